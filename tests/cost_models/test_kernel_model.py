"""Kernel predictors: trees stored as arrays predict exactly like scikit-learn, a fitted
kernel model survives save/load, beats a naive baseline on held-out kernels, and names
the operator and node it has no predictor for."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost_models import load_model, save_model
from hwnas.cost_models.kernel_data import KernelData, KernelNet, load_kernel_data
from hwnas.cost_models.kernel_model import KernelCostModel
from hwnas.cost_models.trees import TreeEnsemble
from hwnas.errors import CostModelError
from hwnas.nn.kernels import FusionRules
from hwnas.primitives import Primitive


@pytest.mark.parametrize("kind", ["gb", "rf"])
def test_tree_arrays_reproduce_sklearn(kind: str) -> None:
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = x[:, 0] ** 2 + np.sin(3 * x[:, 1]) + 0.1 * rng.normal(size=400)
    est = GradientBoostingRegressor(n_estimators=40, max_depth=4, subsample=0.8, random_state=0) if kind == "gb" \
        else RandomForestRegressor(n_estimators=20, random_state=0)
    est.fit(x, y)
    te = TreeEnsemble.from_arrays(TreeEnsemble.from_sklearn(est).arrays(), TreeEnsemble.from_sklearn(est).meta())
    xt = rng.normal(size=(200, 6))
    assert np.allclose(te.predict(xt), est.predict(xt), rtol=0, atol=1e-12)


def _law(p: Primitive) -> float:
    """A made-up device: compute-bound convolutions with a depthwise penalty, padding waste."""
    from hwnas.cost_models.kernel_features import work

    macs, b_in, b_out, b_w = work(p)
    pad = np.ceil(p.c_out / 16) * 16 / p.c_out
    return 1e-3 + macs * pad / (2e7 if p.groups == 1 else 2e6) + (b_in + b_out + b_w) / 5e9


def _synthetic_data(n_nets: int, seed: int) -> KernelData:
    rng = np.random.default_rng(seed)
    nets = []
    for i in range(n_nets):
        prims, ms = [], []
        for _ in range(12):
            c, h = int(rng.choice([8, 16, 24, 32, 48, 64, 96])), int(rng.choice([7, 14, 28, 56]))
            dw = rng.random() < 0.4
            p = Primitive("dwconv-relu6" if dw else "conv-relu", c, c if dw else int(rng.choice([16, 32, 40, 64])),
                          h, h, kernel=int(rng.choice([1, 3, 5])), stride=int(rng.choice([1, 2])),
                          groups=c if dw else 1, act="relu6" if dw else "relu")
            prims.append(p)
            ms.append(_law(p) * float(rng.lognormal(0, 0.03)))
        nets.append(KernelNet(f"n{i}", 0.01 + 1.02 * sum(ms), prims, ms))
    return KernelData(nets, FusionRules(), {"name": "fake"})


def test_fit_beats_naive_baseline_and_round_trips(tmp_path) -> None:
    data = _synthetic_data(60, 0)
    test = _synthetic_data(15, 1)
    model = KernelCostModel(n_estimators=150, seed=0).fit_kernels(data)
    prims, y = test.kernels()
    pred = model.predict_kernels(prims)
    rel = np.abs(pred - y) / y
    fams = {p.op.split("-")[0] for p in prims}
    train_prims, train_y = data.kernels()
    naive = np.array([np.median([t for q, t in zip(train_prims, train_y) if q.op == p.op]) for p in prims])
    assert np.median(rel) < 0.1 < np.median(np.abs(naive - y) / y), (np.median(rel), fams)
    assert model.overhead_[1] == pytest.approx(1.02, rel=0.05)
    save_model(model, tmp_path / "km")
    loaded = load_model(tmp_path / "km")
    assert np.array_equal(loaded.predict_kernels(prims), pred)
    assert not (tmp_path / "km" / "model.pkl").exists()
    with pytest.raises(CostModelError, match="no kernel predictor for 'maxpool'.*knows: conv, dwconv"):
        loaded.predict_kernels([Primitive("maxpool", 8, 8, 8, 8, kernel=3)])
    with pytest.raises(CostModelError, match="fitted from kernel measurements"):
        loaded.fit([], [])


def test_fit_from_a_real_kernel_job(kernel_store, small_onnx, tmp_path) -> None:
    from hwnas.cost_models.kernel_fit import fit_kernel_model
    from hwnas.cost_models.kernel_predict import predict_onnx
    from hwnas.nn.onnx_graph import import_onnx
    from hwnas.store import Store

    with Store(kernel_store, create=False) as st:
        data = load_kernel_data(st, "cpu")
        rep = fit_kernel_model(st, "cpu", test_frac=0.25, out=tmp_path / "kp", params={"n_estimators": 50})
    assert data.summary["networks"] >= 4 and data.summary["kernels"] > 40
    assert {"conv", "reorder"} <= set(rep["families"]) and rep["n_test"] >= 1
    model = load_model(tmp_path / "kp")
    pred = predict_onnx(model, import_onnx(small_onnx), naive=True)
    assert pred.total_ms > 0 and pred.naive_ms > 0
    a, b, c = model.overhead_
    assert a >= 0 and b > 0
    assert abs(a + sum(max(b * r["ms"] + c, 0.0) for r in pred.kernels) - pred.total_ms) < 1e-9


def test_hardware_objective_uses_kernel_predictor(kernel_store, tmp_path) -> None:
    """A search space's hardware objective predicts with kernel predictors: no network of the
    space was ever measured."""
    import numpy as np

    from hwnas import registry
    from hwnas.config import parse_options
    from hwnas.cost_models.kernel_fit import fit_kernel_model
    from hwnas.store import Store

    with Store(kernel_store, create=False) as st:
        fit_kernel_model(st, "cpu", test_frac=0, out=tmp_path / "kp", params={"n_estimators": 30})
        assert not st.query(kind="network", ok_only=True, latest=True) or all(
            r["extra"].get("job") == "kernels" for r in st.query(kind="network"))
    space = registry.build("search_space", "mbv2", resolution=32, width=0.25)
    cls = registry.get("objective", "hardware")
    objective = cls(parse_options(cls.Options, {"model": str(tmp_path / "kp")}, "objective"), space=space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(2)]
    values = objective.values(archs)
    assert values.shape == (2,) and np.all(values > 0) and np.all(np.isfinite(values))
    assert objective.values(archs[:1])[0] == values[0]  # cached per architecture


def test_kernel_job_advice_prices_held_out_kernels_through_a_kernel_source(kernel_store) -> None:
    """The kernel job's advice: cross-validated kernel predictors (as KernelSources) weight
    the block families of the round-0 networks; the same store gives the same weights."""
    from hwnas.cost_models.kernel_fit import advise_round
    from hwnas.store import Store

    with Store(kernel_store, readonly=True) as st:
        dev_id = st.find_device("cpu")["id"]
        advice = advise_round(st, dev_id, "onnxruntime", {}, 1, folds=2)
        again = advise_round(st, dev_id, "onnxruntime", {}, 1, folds=2)
    weights = advice["weights"]
    assert weights and advice == again
    assert all(np.isfinite(v) and v >= 0 for v in weights.values())
    assert set(advice["families"]) == set(weights)  # each weighted family was judged on held-out networks
    assert {"mbconv_se", "shuffle"} & set(weights)  # the families the fixture's job emphasised


def test_kernel_job_advice_judges_a_sample_of_a_big_store(kernel_store, monkeypatch) -> None:
    """A store with more networks than the advisor judges: a seeded sample of them (the
    same one again), so a top-up of a big store keeps measuring instead of judging."""
    from hwnas.cost_models import kernel_fit
    from hwnas.store import Store

    with Store(kernel_store, readonly=True) as st:
        dev_id = st.find_device("cpu")["id"]
        full = kernel_fit.advise_round(st, dev_id, "onnxruntime", {}, 1, folds=2)
        monkeypatch.setattr(kernel_fit, "ADVICE_MAX_NETWORKS", 5)
        sampled = kernel_fit.advise_round(st, dev_id, "onnxruntime", {}, 1, folds=2)
        again = kernel_fit.advise_round(st, dev_id, "onnxruntime", {}, 1, folds=2)
    judged = lambda a: sum(f["networks"] for f in a["families"].values())  # noqa: E731  (network x family)
    assert judged(sampled) < judged(full) and sampled == again
    assert all(f["networks"] <= 5 for f in sampled["families"].values())


@pytest.fixture(scope="module")
def real_kernels(measured_rules, tmp_path_factory) -> KernelData:
    """A real kernel job on this machine: ~30 small random networks (ONNX Runtime's profiler
    gives each kernel's time), about 10 s."""
    from hwnas.nn.kernels.rules import KIND
    from hwnas.nn.kernels.token_blocks import TOKEN_BLOCKS
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.profilers.kernel_job import KernelJob, KernelSampling
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol
    from hwnas.store import Store

    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=5, min_time_ms=0.5, time_budget_s=0.5, sessions=1)
    with Store(tmp_path_factory.mktemp("realkernels") / "k.sqlite") as st:
        dev_id = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev_id, "onnxruntime", KIND, measured_rules.to_dict(), {"test": True})
        KernelJob(st, ProfileRequest(networks=30, seed=2, protocol=proto, show_progress=False),
                  KernelSampling(rounds=1, max_macs=3e7, max_resolution=64,
                                 # the convolutional networks this test was calibrated on; token families
                                 # (tiny reshapes/transposes timed in whole microseconds) have their own job
                                 # in tests/nn/kernels/test_token_job.py
                                 weights={b: 0.0 for b in TOKEN_BLOCKS})).run()
        return load_kernel_data(st, "cpu")


@pytest.mark.timeout(300)
def test_kernel_model_is_accurate_on_real_held_out_kernels(real_kernels) -> None:
    """Accuracy on measured kernels of networks the model never saw (a third held out): its
    kernels ranked right (Spearman >= 0.9) where the per-operator median of the training
    kernels (a shape-blind baseline) ranks at ~0.7, and closer than it; the held-out networks
    composed from their kernels land near their end-to-end times and rank right. Observed in
    11 runs on the shared 2-core machine (load ~13): kernel median error 8-24% (ONNX Runtime's
    profiler reports whole microseconds, so small kernels are coarse) vs 33-50%, Spearman
    0.96-0.97 vs 0.71-0.73; networks 10-20% median error, Spearman 0.96-1.0."""
    from scipy.stats import spearmanr

    data = real_kernels
    n = len(data.nets)
    assert n >= 15 and data.summary["kernels"] >= 300
    idx = np.random.default_rng(0).permutation(n)
    te, tr = idx[: n // 3], idx[n // 3:]
    model = KernelCostModel(seed=0, n_estimators=50).fit_kernels(data, tr)
    prims, y = data.kernels(te)
    # each held-out network's kernels as the model prices them: in that network's context
    pred = np.concatenate([model.predict_network(data.nets[i].kernels) for i in te])
    train_prims, train_y = data.kernels(tr)
    naive = np.array([np.median([t for q, t in zip(train_prims, train_y) if q.op == p.op] or [np.median(train_y)])
                      for p in prims])
    err, naive_err = np.median(np.abs(pred / y - 1)), np.median(np.abs(naive / y - 1))
    assert err <= 0.35 and err < 0.8 * naive_err, (err, naive_err)
    assert spearmanr(y, pred).statistic >= 0.9 > spearmanr(y, naive).statistic
    e2e = np.array([data.nets[i].e2e_ms for i in te])
    composed = np.array([model.compose(model.predict_network(data.nets[i].kernels)) for i in te])
    assert np.median(np.abs(composed / e2e - 1)) <= 0.35  # median: a ~15 µs network is all fixed costs
    assert spearmanr(e2e, composed).statistic >= 0.75
