from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.cost_models.metrics import plot_predictions, regression_metrics, report_rows
from hwnas.errors import CostModelError


def test_metrics_hand_computed():
    y = np.array([1.0, 2.0, 4.0, 10.0])
    p = np.array([1.1, 1.8, 4.0, 10.6])  # relative errors +10%, -10%, 0, +6%
    m = regression_metrics(y, p)
    assert m["rmse"] == pytest.approx(math.sqrt((0.01 + 0.04 + 0 + 0.36) / 4))
    assert m["rel_rmse"] == pytest.approx(math.sqrt((0.01 + 0.01 + 0 + 0.0036) / 4))
    assert m["mape"] == pytest.approx((0.1 + 0.1 + 0 + 0.06) / 4)
    assert m["within_5"] == pytest.approx(0.25)
    assert m["within_10"] == pytest.approx(1.0)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["kendall_tau"] == pytest.approx(1.0)


def test_rank_metrics_reversed_and_constant():
    y = np.array([1.0, 2.0, 3.0])
    m = regression_metrics(y, y[::-1].copy())
    assert m["spearman"] == pytest.approx(-1.0) and m["kendall_tau"] == pytest.approx(-1.0)
    assert regression_metrics(y, np.full(3, 2.0))["spearman"] == 0.0


def test_metrics_refuse_bad_input():
    with pytest.raises(CostModelError):
        regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(CostModelError):
        regression_metrics([0.0, 2.0], [1.0, 2.0])


def test_report_rows_lut_first_with_gain():
    res = {"mlp": regression_metrics([1, 2, 3], [1, 2, 3.3]), "lut": regression_metrics([1, 2, 3], [2, 3, 4])}
    rows = report_rows(res)
    assert [r["model"] for r in rows] == ["lut", "mlp"]
    assert rows[1]["vs_lut"] == pytest.approx(res["lut"]["rmse"] / res["mlp"]["rmse"], rel=1e-2)
    assert rows[1]["within_10"] == 100.0


def test_plot_writes_png(tmp_path):
    files = plot_predictions([1.0, 2.0, 3.0], {"lut": [1.1, 2.1, 2.9]}, tmp_path)
    assert files[0].name == "pred_vs_measured_lut.png"
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
