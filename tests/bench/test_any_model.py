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


class _CountingModel:
    """A stand-in kernel predictor: 0.01 ms per detected kernel."""

    def rules(self):  # noqa: ANN201
        from hwnas.nn.kernels.rules import FusionRules

        return FusionRules.none()

    def predict_graph(self, kg):  # noqa: ANN001, ANN201
        return 0.01 * len(kg.kernels), None


def test_each_predictor_is_scaled_by_the_median_round_factor(tmp_path) -> None:
    import argparse
    import json

    from hwnas.cost_models.calibration import probe_predictions
    from hwnas.profilers.probe import ProbeRun, probe_networks

    g = runpy.run_path(str(BENCH))
    args = argparse.Namespace(store=str(tmp_path / "kernels.sqlite"), zoo_store=str(tmp_path / "zoo.sqlite"),
                              zoo_rounds=3)
    model = _CountingModel()
    pred = probe_predictions(model, [p.data for p in probe_networks(4)])
    rows = [{"model": "m", "measured_ms": 2.0, "predicted_ms": 1.9, "shipped_ms": 2.2}]
    assert "note" in g["calibrate_rows"](args, rows, model, model)  # no round measured yet: no factor
    for r, f in zip((1, 2, 3), (1.02, 1.10, 1.04)):
        g["round_store"](args, r).write_bytes(b"")
        run = ProbeRun(list(range(4)), list(pred * f), 1.0, "2026-12-07T04:00:00+00:00")
        g["probe_file"](args, r).write_text(json.dumps(run.to_dict()))
    out = g["calibrate_rows"](args, rows, model, model)
    assert out["kernel_predictor"]["factor"] == 1.04 and out["kernel_predictor"]["per_round"] == [1.02, 1.1, 1.04]
    assert rows[0]["calibrated_ms"] == round(1.9 * 1.04, 4) and rows[0]["shipped_calibrated_ms"] == round(2.2 * 1.04, 4)
    assert rows[0]["calibrated_error_pct"] == round(100 * (1.9 * 1.04 - 2.0) / 2.0, 2)
    g["probe_file"](args, 2).unlink()  # a round without a probe: no calibrated figures at all
    assert "note" in g["calibrate_rows"](args, [dict(rows[0])], model, model)
