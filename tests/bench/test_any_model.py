"""bench/any_model.py's figures: a model a predictor refuses is a miss in the within-±10%/±5%
shares (counted, never dropped), and its errors are over the priced models only."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "any_model.py"


def test_refused_models_count_as_misses() -> None:
    metrics = runpy.run_path(str(BENCH))["_metrics"]
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.04, 2.3, np.nan, 8.0])   # within 5%, 15% off, refused, exact
    m = metrics(y, p)
    assert m["models"] == 4 and m["refused"] == 1
    assert m["within_5"] == 0.5 and m["within_10"] == 0.5       # 2 of 4: the refused one is a miss
    assert np.isclose(m["mape"], np.mean([0.04, 0.15, 0.0]))    # errors over the 3 priced models
    none = metrics(y, np.full(4, np.nan))
    assert none["refused"] == 4 and none["within_10"] == 0.0 and "mape" not in none


def test_another_days_zoo_gives_the_agreement_and_the_pooled_reference() -> None:
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("any_model_bench", BENCH)
    g = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(g)
    rows = [{"model": "a", "measured_ms": 1.0, "rounds_ms": [1.0, 1.0, 1.0], "predicted_ms": 1.08, "naive_ms": 1.3,
             "shipped_ms": None},
            {"model": "b", "measured_ms": 2.0, "rounds_ms": [2.0, 2.0, 2.0], "predicted_ms": 2.0, "naive_ms": 2.0,
             "shipped_ms": None}]
    other = {"a": [1.2, 1.2, 1.2], "b": [2.04, 2.04, 2.04]}  # a moved by 20% from one day to the next, b by 2%
    g._round_medians = lambda args, device, hashes: other
    args = argparse.Namespace(other_zoo=["day2.sqlite"], device="cpu", zoo_store="", store="s.sqlite", zoo_rounds=3)
    out = g.other_days(args, {}, rows)
    (agree,) = out["agreement"]
    assert agree["within_5"] == 0.5 and agree["within_10"] == 0.5 and agree["rounds"] == 3
    assert np.isclose(agree["median_ratio"], np.median([1.2, 1.02]))
    assert out["pooled_rounds"] == 6 and set(out["against_all_days"]) == {"kernel_predictor", "naive_per_node_sum"}
    k = out["against_all_days"]["kernel_predictor"]  # a's pooled median is 1.1: 1.08 is within 5% of it
    assert k["within_5"] == 1.0
    assert g.other_days(argparse.Namespace(other_zoo=[]), {}, rows) == {}
    g._round_medians = lambda args, device, hashes: {}  # a store without this zoo: one clear line
    with pytest.raises(SystemExit, match="--other-zoo day2.sqlite: no zoo model of this report is measured there"):
        g.other_days(args, {}, rows)
