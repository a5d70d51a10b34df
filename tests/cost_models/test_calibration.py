"""Speed calibration: the factor is the median measured / predicted over the probe, every
time of a prediction is scaled by it, and networks a predictor cannot price are left out."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost_models.calibration import FAR, scaled, speed_factor
from hwnas.cost_models.kernel_predict import Prediction
from hwnas.errors import CostModelError


def test_the_factor_is_the_median_ratio_and_outliers_do_not_move_it() -> None:
    pred = np.array([1.0, 2.0, 4.0, 8.0, 0.5])
    meas = pred * np.array([1.05, 1.04, 1.06, 3.0, 1.05])  # one network in a bad session
    sf = speed_factor(meas, pred, wall_s=1.5, when="2026-12-07T04:00:00+00:00")
    assert sf.factor == pytest.approx(1.05) and sf.networks == 5 and sf.q25 <= 1.05 <= sf.q75
    assert not sf.far and "1.050x" in sf.line() and "another kind of machine" not in sf.line()
    far = speed_factor(pred * (1.0 + FAR + 0.2), pred)
    assert far.far and "another kind of machine" in far.line()


def test_unpriced_probe_networks_are_left_out_but_half_are_needed() -> None:
    sf = speed_factor([1.1, 2.2, 3.3, 9.0], [1.0, 2.0, 3.0, np.nan])
    assert sf.networks == 3 and sf.factor == pytest.approx(1.1)
    with pytest.raises(CostModelError, match="only 1 of 4 probe networks"):
        speed_factor([1.0, 2.0, 3.0, 4.0], [1.0, np.nan, np.nan, np.nan])
    with pytest.raises(CostModelError, match="expected the same number"):
        speed_factor([1.0, 2.0], [1.0])


def test_scaling_keeps_the_shares() -> None:
    p = Prediction("m.onnx", 3.0, [{"kernel": "a", "ms": 1.0, "share": 1 / 3}, {"kernel": "b", "ms": 2.0, "share": 2 / 3}],
                   naive_ms=4.0)
    s = scaled(p, 1.1)
    assert s.total_ms == pytest.approx(3.3) and s.naive_ms == pytest.approx(4.4)
    assert [k["ms"] for k in s.kernels] == pytest.approx([1.1, 2.2]) and [k["share"] for k in s.kernels] == [1 / 3, 2 / 3]
    assert p.total_ms == 3.0  # the original is untouched
