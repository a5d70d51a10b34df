"""The few-shot adaptation on quantised (integer-millisecond) columns and its candidates."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.cost_models.adapt import Targets, adapt, loo_predictions, quantum


def test_quantum_finds_the_coarsest_decimal_step():
    assert quantum(np.array([9.0, 16.0, 31.0, 56.0])) == 1.0
    assert quantum(np.array([9.5, 16.0, 3.5])) == 0.5
    assert quantum(np.array([20.0, 40.0, 60.0])) == 20.0
    assert quantum(np.exp(np.log(np.array([9.0, 12.0, 7.0])))) == 1.0  # survives the log round trip
    assert quantum(np.array([10.75437, 7.65848, 6.02976])) == 0.0  # real-valued timings
    t = Targets.of(np.log(np.array([9.0, 10.0])), None)
    np.testing.assert_allclose(np.exp(t.lo), [8.5, 9.5])
    np.testing.assert_allclose(np.exp(t.hi), [9.5, 10.5])
    assert Targets.of(np.log(np.array([9.3, 10.1])), 0.0).noise == 0.0


def _quantised_device(seed: int = 0):
    """Six correlated source outputs; a new device that mixes two of them, 1.4-40 ms, reported
    in whole milliseconds (as the phones of the NB201/FBNet tables are)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(400, 1)) + 0.3 * rng.normal(size=(400, 6))
    y = np.exp(2.2 + 0.45 * (0.6 * Z[:, 1] + 0.4 * Z[:, 3]))
    return Z, y, np.round(y)


def test_integer_millisecond_shots_give_steady_rankings():
    """Thirty draws of ten rounded shots, Spearman against the exact latency of the other 390:
    fitting the rounded values as intervals (and counting the rounding as noise) keeps the
    worst draw and the spread across draws well inside what treating them as exact gives."""
    Z, y, yq = _quantised_device()
    got: dict[str, list[float]] = {"intervals": [], "exact": []}
    for s in range(30):
        order = np.random.default_rng(s).permutation(len(y))
        shots, ev = order[:10], order[10:]
        for name, step in (("intervals", None), ("exact", 0.0)):
            a = adapt(Z[shots], np.log(yq[shots]), step=step, shrink_mean=step is None)
            got[name].append(float(spearmanr(y[ev], a.predict_log(Z[ev])).statistic))
    new, old = np.array(got["intervals"]), np.array(got["exact"])
    assert np.ptp(new) < 0.6 * np.ptp(old) and np.ptp(new) <= 0.05, (np.ptp(new), np.ptp(old))
    assert new.min() > old.min() and new.mean() >= old.mean() - 0.005


def test_rounded_shots_recover_the_unrounded_latencies():
    """Eight shots of a device whose true latencies are exactly a source's (9.6, 10.2 and 10.4
    all read 10): fitting intervals recovers the true values better than fitting the rounded
    numbers as if they were exact."""
    true = np.array([5.3, 9.6, 10.2, 10.4, 14.7, 20.2, 33.4, 40.1])
    z = np.log(true)[:, None]
    Z = np.c_[z, 0.8 * z + 0.3, 1.2 * z - 0.2]
    y = np.round(true)
    err = {}
    for step in (None, 0.0):
        pred = np.exp(adapt(Z, np.log(y), step=step, shrink_mean=step is None).predict_log(Z))
        assert pred[1] < pred[2] < pred[3]
        err[step] = float(np.abs(pred / true - 1).max())
    assert err[None] < 0.02 and err[None] < 0.6 * err[0.0], err


def test_the_mean_device_is_a_candidate_and_loo_uses_the_intervals():
    """A new device equal to the average of all sources: the shrinkage candidate carries the
    weight; and the nested leave-one-out on integer shots lands within the rounding."""
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(60, 5))
    t = 2.5 + 0.3 * Z.mean(1)
    a = adapt(Z[:12], t[:12], [f"s{j}" for j in range(5)])
    assert max(a.weights, key=a.weights.get) == "mean-of-sources"
    assert np.abs(a.predict_log(Z[12:]) - t[12:]).max() < 0.02
    yq = np.round(np.exp(t[:12]))
    loo = np.exp(loo_predictions(Z[:12], np.log(yq)))
    assert np.median(np.abs(loo - yq)) < 1.0


def test_exact_values_are_fit_as_before():
    """step=0 and no shrinkage candidate is the previous adaptation: real-valued shots are
    untouched by the interval machinery (the detected step is 0)."""
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(10, 3))
    t = 1.0 + Z @ np.array([0.5, 0.2, 0.0]) + rng.normal(scale=0.01, size=10)
    a, b = adapt(Z, t, step=None, shrink_mean=False), adapt(Z, t, step=0.0, shrink_mean=False)
    np.testing.assert_allclose(a.w, b.w)
    assert a.b == pytest.approx(b.b)
