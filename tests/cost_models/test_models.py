from __future__ import annotations

import numpy as np
import pytest

from hwnas import registry
from hwnas.cost_models import model_names, regression_metrics, synthetic
from hwnas.cost_models.fitting import build_model
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec, Primitive


def test_model_names_come_in_report_order():
    names = model_names(all_only=True)
    assert names[:6] == ["lut", "linear1", "linear2", "mlp", "lstm", "gnn"]
    assert set(names) <= {e.name for e in registry.list("cost_model")}


@pytest.mark.parametrize("name", model_names(all_only=True))
def test_model_beats_mean_on_held_out(fitted, mbv2_data, name):
    tr, ytr, te, yte, _ = mbv2_data
    model = fitted[name]
    p = model.predict(te)
    assert p.shape == (len(te),) and np.all(np.isfinite(p))
    mean_rmse = regression_metrics(yte, np.full(len(yte), ytr.mean()))["rmse"]
    m = regression_metrics(yte, p)
    assert m["spearman"] > 0.8
    if name != "lut":  # the naive sum is biased by the law's extra terms; learned models must fix that
        assert m["rmse"] < 0.5 * mean_rmse, (name, m)
        assert m["rmse"] < regression_metrics(yte, fitted["lut"].predict(te))["rmse"]
    assert all(k.endswith("_") for k in vars(model) if k not in model.get_params() and not k.startswith("_"))


def test_linear_recovers_scaled_sum():
    nets, _, table = synthetic.synthetic_dataset("mbv2", n=40, seed=3, resolution=64)  # lengths vary
    s = np.array([sum(table[p.key] for p in n.nodes) for n in nets])
    m = build_model("linear2").fit(nets, 1.5 * s + 0.02 * np.array([len(n) for n in nets]) + 0.3, table)
    np.testing.assert_allclose(m.coef_, [1.5, 0.02, 0.3], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["mlp", "lstm", "gnn"])
def test_seeded_fit_is_deterministic(mbv2_data, fast, name):
    tr, ytr, te, _, table = mbv2_data
    kw = {**fast[name], "steps": 40}
    a = build_model(name, 7, kw).fit(tr[:40], ytr[:40], table).predict(te)
    b = build_model(name, 7, kw).fit(tr[:40], ytr[:40], table).predict(te)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["mlp", "lstm", "gnn"])
def test_table_free_models_on_fbnet_sequences(fast, name):
    nets, y, _ = synthetic.synthetic_dataset("fbnet", n=120, seed=2)
    m = build_model(name, 0, fast[name]).fit(nets[:90], y[:90])
    mean_rmse = regression_metrics(y[90:], np.full(30, y[:90].mean()))["rmse"]
    assert regression_metrics(y[90:], m.predict(nets[90:]))["rmse"] < mean_rmse


def test_table_models_need_a_table_and_missing_key_is_named(mbv2_data, fitted):
    tr, ytr, *_ = mbv2_data
    for name in ("lut", "linear1", "linear2"):
        with pytest.raises(CostModelError, match="needs a primitive cost table"):
            build_model(name).fit(tr, ytr)
    odd = Primitive("conv", 3, 7, 64, 64, kernel=3)
    net = NetworkSpec.chain((3, 64, 64), [odd, *tr[0].nodes[1:]])
    for name in model_names(all_only=True):
        with pytest.raises(CostModelError, match="conv c3>7 64x64"):
            fitted[name].predict([net])


def test_bad_targets_refused(mbv2_data):
    tr, ytr, *_ = mbv2_data
    with pytest.raises(CostModelError, match="targets"):
        build_model("mlp").fit(tr[:3], [1.0, 2.0])
    with pytest.raises(CostModelError, match="> 0"):
        build_model("linear1").fit(tr[:3], [1.0, -2.0, 3.0], {})


def test_predict_empty_and_unfitted(fitted):
    assert fitted["mlp"].predict([]).shape == (0,)
    with pytest.raises(CostModelError, match="not fitted"):
        build_model("gnn").predict([])
