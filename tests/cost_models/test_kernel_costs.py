"""Per-family kernel costs in the end-to-end map: one kernel can be several executed nodes
(an SE block is five), so the per-kernel cost that separates a network's profiled kernel
sum from its end-to-end time differs by family. A planted cost per family is recovered,
prices held-out networks better than one common cost, survives save/load, and a model
saved without family costs predicts as before."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost_models import load_model, save_model
from hwnas.cost_models.kernel_data import KernelData, KernelNet
from hwnas.cost_models.kernel_model import KernelCostModel
from hwnas.cost_models.kernel_overhead import fit_kernel_costs, fit_overhead
from hwnas.nn.kernels import FusionRules
from hwnas.primitives import Primitive

COST = {"conv": -0.002, "se": -0.012}  # ms per kernel: what the end-to-end run does not pay


def _pool() -> list[Primitive]:
    # kernel times over two decades, so a network's kernel sum is not its kernel count again
    convs = [Primitive("conv-relu", c, c, h, h, kernel=3, act="relu") for c in (8, 16, 32, 64) for h in (7, 14, 28, 56)]
    ses = [Primitive("se", c, c, h, h) for c in (16, 32, 64) for h in (7, 14)]
    return convs + ses


def _time(p: Primitive) -> float:
    if p.op == "se":
        return 0.03 + p.c_in * p.h * p.w / 2e6
    return 0.02 + p.c_in * p.c_out * p.h * p.w * 9 / 4e7


def _data(n: int, seed: int) -> KernelData:
    pool, rng = _pool(), np.random.default_rng(seed)
    nets = []
    for k in range(n):
        prims = [pool[i] for i in rng.integers(0, len(pool), int(rng.integers(3, 40)))]
        ms = [_time(p) * float(rng.lognormal(0, 0.01)) for p in prims]
        e2e = 0.01 + sum(ms) + sum(COST["se" if p.op == "se" else "conv"] for p in prims)
        nets.append(KernelNet(f"n{seed}-{k}", e2e * float(rng.lognormal(0, 0.005)), prims, ms))
    return KernelData(nets, FusionRules(), {"name": "fake"})


def _mape(model: KernelCostModel, nets: list[KernelNet]) -> float:
    return float(np.mean([abs(model.compose(model.predict_network(n.kernels), n.kernels) / n.e2e_ms - 1)
                          for n in nets]))


def test_family_costs_are_recovered_and_price_held_out_networks_better(tmp_path) -> None:
    data, test = _data(400, 0), _data(60, 1).nets
    model = KernelCostModel(n_estimators=40, seed=0).fit_kernels(data)
    assert model.kernel_cost_["se"] == pytest.approx(COST["se"], rel=0.25)
    assert model.kernel_cost_["conv"] == pytest.approx(COST["conv"], rel=0.25)
    with_families = _mape(model, test)
    common = KernelCostModel(n_estimators=40, seed=0).fit_kernels(data)
    common.overhead_, common.kernel_cost_ = fit_overhead(data.nets), {}
    assert with_families < 0.7 * _mape(common, test)  # one common cost misprices SE-heavy networks

    save_model(model, tmp_path / "km")
    loaded = load_model(tmp_path / "km")
    assert loaded.kernel_cost_ == pytest.approx(model.kernel_cost_)
    n = test[0]
    assert loaded.compose(loaded.predict_network(n.kernels), n.kernels) == pytest.approx(
        model.compose(model.predict_network(n.kernels), n.kernels))
    # a model saved before family costs: its state has none, and it composes with the common c
    state = model.state()
    state.pop("kernel_cost")
    old = KernelCostModel()
    old.restore(state, model.tensors())
    assert old.kernel_cost_ == {}
    per = old.predict_network(n.kernels)
    a, b, c = old.overhead_
    assert old.compose(per, n.kernels) == pytest.approx(a + float(np.sum(np.maximum(b * per + c, 0.0))))


def test_too_few_networks_keep_the_common_map() -> None:
    nets = _data(8, 2).nets  # 2 families need 12 networks before their costs are fitted
    common = fit_overhead(nets)
    assert fit_kernel_costs(nets, common) == (common, {})
