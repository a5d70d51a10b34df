"""The kernel model's network context: the same kernel is slower in a bigger network; the
model recovers that slope from repeated kernel configurations, prices a small network's
kernels lower than a context-free model does (closer to the truth), and keeps the slopes
through save/load (a model saved without them predicts as before). Both measures of the
context: the network's end-to-end time (``e2e``, the first form) and the bytes it moves
(``bytes``), each recovered as a per-family slope where it is the one planted; and the
default, the bytes as a feature of the trees (``bytes-trees``), which also learns an effect
that differs between kernels of one family (a slope cannot)."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost_models import load_model, save_model
from hwnas.cost_models.kernel_data import KernelData, KernelNet
from hwnas.cost_models.kernel_features import work
from hwnas.cost_models.kernel_model import KernelCostModel, bytes_context
from hwnas.errors import CostModelError
from hwnas.nn.kernels import FusionRules
from hwnas.primitives import Primitive

BETA = 0.2  # log time per decade of network time: the planted context effect


def _pool(rng: np.random.Generator) -> list[Primitive]:
    out = []
    for _ in range(30):
        c, h = int(rng.choice([8, 16, 32, 64])), int(rng.choice([7, 14, 28, 56]))
        dw = rng.random() < 0.4
        out.append(Primitive("dwconv-relu6" if dw else "conv-relu", c, c if dw else int(rng.choice([16, 32, 64])),
                             h, h, kernel=int(rng.choice([1, 3])), groups=c if dw else 1,
                             act="relu6" if dw else "relu"))
    return list({p.key: p for p in out}.values())


def _law(p: Primitive) -> float:
    macs, b_in, b_out, b_w = work(p)
    return 2e-3 + macs / (2e7 if p.groups == 1 else 2e6) + (b_in + b_out + b_w) / 5e9


def _net(prims: list[Primitive], rng: np.random.Generator, name: str, by: str = "e2e") -> KernelNet:
    ctx = np.log10(sum(_law(p) for p in prims)) if by == "e2e" else bytes_context(prims) - 6
    # "bytes-k1": only the 1x1 kernels (low arithmetic intensity) feel the context
    ms = [_law(p) * float(np.exp(BETA * ctx if by != "bytes-k1" or p.kernel == 1 else 0.0))
          * float(rng.lognormal(0, 0.02)) for p in prims]
    return KernelNet(name, float(sum(ms)), prims, ms)


def _data(n: int, seed: int, pool: list[Primitive], by: str = "e2e") -> KernelData:
    rng = np.random.default_rng(seed)
    nets = [_net([pool[i] for i in rng.integers(0, len(pool), int(rng.integers(3, 60)))], rng, f"n{seed}-{k}", by)
            for k in range(n)]
    return KernelData(nets, FusionRules(), {"name": "fake"})


def test_context_slope_is_recovered_and_prices_small_networks_right(tmp_path) -> None:
    pool = _pool(np.random.default_rng(0))
    data = _data(120, 1, pool)
    ctx_model = KernelCostModel(n_estimators=60, seed=0, context_by="e2e").fit_kernels(data)
    flat = KernelCostModel(n_estimators=60, seed=0, context=False).fit_kernels(data)
    assert flat.context_ == {}
    assert ctx_model.context_["overall"] == pytest.approx(BETA, rel=0.3)
    rng = np.random.default_rng(7)
    small = [_net([pool[i] for i in rng.integers(0, len(pool), 3)], rng, f"s{k}") for k in range(20)]
    err_ctx = [abs(np.sum(ctx_model.predict_network(n.kernels)) / sum(n.kernel_ms) - 1) for n in small]
    err_flat = [abs(np.sum(flat.predict_network(n.kernels)) / sum(n.kernel_ms) - 1) for n in small]
    bias_flat = np.median([np.sum(flat.predict_network(n.kernels)) / sum(n.kernel_ms) - 1 for n in small])
    assert bias_flat > 0.05  # a context-free model over-prices small networks (the zoo's symptom) ...
    assert np.median(err_ctx) < 0.5 * np.median(err_flat)  # ... the context slopes remove most of it
    # the same kernels predict higher inside a big network than inside a small one
    k = small[0].kernels
    big = k + [pool[i] for i in range(len(pool))] * 3
    assert np.all(ctx_model.predict_network(big)[: len(k)] > ctx_model.predict_network(k))
    # beyond the biggest training network the context is held at its edge (no extrapolation)
    huge, huger = big + list(pool) * 5, big + list(pool) * 20
    assert np.log10(ctx_model.compose(ctx_model.predict_network(huge))) > ctx_model.context_["range"][1]
    assert np.allclose(ctx_model.predict_network(huger)[: len(k)], ctx_model.predict_network(huge)[: len(k)])

    save_model(ctx_model, tmp_path / "km")
    loaded = load_model(tmp_path / "km")
    assert np.array_equal(loaded.predict_network(big), ctx_model.predict_network(big))
    assert loaded.context_by == "e2e"
    state = ctx_model.state()
    state.pop("context")  # a model saved before the slopes existed
    old = KernelCostModel()
    old.restore(state, ctx_model.tensors())
    assert np.array_equal(old.predict_network(big), old.predict_kernels(big))


def test_bytes_context_is_recovered_needs_no_fixed_point_and_is_saved(tmp_path) -> None:
    """Planted on the bytes a network moves, the default model recovers the slope, prices
    small networks' kernels better than a context-free model, and keeps ``by`` on disk;
    a model saved with the end-to-end context still loads as one (the shipped asset)."""
    pool = _pool(np.random.default_rng(0))
    data = _data(120, 1, pool, by="bytes")
    model = KernelCostModel(n_estimators=60, seed=0, context_by="bytes").fit_kernels(data)
    flat = KernelCostModel(n_estimators=60, seed=0, context=False).fit_kernels(data)
    assert model.context_["by"] == "bytes" and model.context_["overall"] == pytest.approx(BETA, rel=0.3)
    rng = np.random.default_rng(7)
    small = [_net([pool[i] for i in rng.integers(0, len(pool), 3)], rng, f"s{k}", "bytes") for k in range(20)]
    err = [abs(np.sum(model.predict_network(n.kernels)) / sum(n.kernel_ms) - 1) for n in small]
    err_flat = [abs(np.sum(flat.predict_network(n.kernels)) / sum(n.kernel_ms) - 1) for n in small]
    assert np.median(err) < 0.5 * np.median(err_flat)
    k = small[0].kernels
    big = k + list(pool) * 3
    assert np.all(model.predict_network(big)[: len(k)] > model.predict_network(k))
    save_model(model, tmp_path / "km")
    loaded = load_model(tmp_path / "km")
    assert loaded.context_by == "bytes" and np.array_equal(loaded.predict_network(big), model.predict_network(big))
    with pytest.raises(CostModelError, match="context_by must be one of bytes-trees, bytes, e2e"):
        KernelCostModel(context_by="flops")


def test_context_in_the_trees_learns_an_effect_a_slope_cannot(tmp_path) -> None:
    """Planted: only 1x1 kernels slow down in networks that move more data. The default
    model (context as a tree feature) prices fresh networks' kernels closer than per-family
    slopes do, keeps a 3x3 kernel's time flat across contexts while a 1x1's grows, and
    predicts the same after save/load."""
    pool = _pool(np.random.default_rng(0))
    data = _data(160, 1, pool, by="bytes-k1")
    trees = KernelCostModel(n_estimators=60, seed=0).fit_kernels(data)
    slopes = KernelCostModel(n_estimators=60, seed=0, context_by="bytes").fit_kernels(data)
    assert trees.context_by == "bytes-trees" and "slopes" not in trees.context_
    rng = np.random.default_rng(7)
    fresh = [_net([pool[i] for i in rng.integers(0, len(pool), int(rng.choice([3, 80])))], rng, f"f{k}", "bytes-k1")
             for k in range(30)]

    def err(m: KernelCostModel) -> float:
        return float(np.median([abs(np.sum(m.predict_network(n.kernels)) / sum(n.kernel_ms) - 1) for n in fresh]))

    assert err(trees) < 0.7 * err(slopes)
    k1 = next(p for p in pool if p.kernel == 1 and p.groups == 1)
    k3 = next(p for p in pool if p.kernel == 3 and p.groups == 1)
    small, big = [k1, k3], [k1, k3] + list(pool) * 4
    grow = trees.predict_network(big)[:2] / trees.predict_network(small)[:2]
    assert grow[0] > 1.15 and abs(grow[1] - 1) < 0.08
    save_model(trees, tmp_path / "km")
    loaded = load_model(tmp_path / "km")
    assert loaded.context_by == "bytes-trees" and np.array_equal(loaded.predict_network(big), trees.predict_network(big))
    assert np.all(np.isfinite(loaded.predict_kernels(big)))  # no network given: the reference context
