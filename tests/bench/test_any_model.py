"""bench/any_model.py's figures: a model a predictor refuses is a miss in the within-±10%/±5%
shares (counted, never dropped), and its errors are over the priced models only."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np

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
