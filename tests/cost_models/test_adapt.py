"""The few-shot adaptation on quantised (integer-millisecond) columns and its candidates."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.cost_models.adapt import Targets, adapt, loo_predictions, quantum, refine
from hwnas.errors import CostModelError


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


def _base_like(seed: int, n: int = 400, width: int = 24, devices: int = 3):
    """A base's view of n networks: hidden features H of low rank (a trained layer's features
    live near a few directions) and source outputs read out of them (Z = H @ W), as
    ``MultiDeviceModel.embed_hidden`` gives them; fewer sources than directions of H."""
    rng = np.random.default_rng(seed)
    H = np.abs(rng.normal(size=(n, 6)) @ rng.normal(size=(6, width)) + 0.02 * rng.normal(size=(n, width)))
    Z = H @ rng.normal(size=(width, devices))
    return rng, H, (Z - Z.mean(0)) / Z.std(0)


def test_refining_the_last_layer_fits_a_device_the_sources_do_not_span():
    """A new device scaled and shifted from source 2 plus an op cost none of the sources has
    (a read-out of H outside theirs): over ten draws of 15 shots, the mix beats the
    unadapted source, and the fine-tuned last layer beats the mix in every draw, by 15% in
    error and in rank on average, on the other networks."""
    rng, H, Z = _base_like(0)
    X = np.c_[np.ones(len(Z)), Z]
    extra = H @ rng.normal(size=H.shape[1])
    extra -= X @ np.linalg.lstsq(X, extra, rcond=None)[0]
    t = 2.0 + 1.3 * Z[:, 2] + 0.5 * extra / extra.std()
    err: dict[str, list[float]] = {"source": [], "mix": [], "ft": []}
    rho: dict[str, list[float]] = {"mix": [], "ft": []}
    for s in range(10):
        order = np.random.default_rng(s).permutation(len(t))
        shots, ev = order[:15], order[15:]
        mix = adapt(Z[shots], t[shots]).predict_log(Z[ev])
        ft = mix + refine(H[shots], t[shots], loo_predictions(Z[shots], t[shots])).predict_log(H[ev])
        for name, p in (("source", Z[ev, 2]), ("mix", mix), ("ft", ft)):
            err[name].append(float(np.sqrt(np.mean((p - t[ev]) ** 2))))
        rho["mix"].append(spearmanr(t[ev], mix).statistic)
        rho["ft"].append(spearmanr(t[ev], ft).statistic)
    e = {k: np.array(v) for k, v in err.items()}
    assert (e["ft"] < e["mix"]).all() and (e["mix"] < 0.5 * e["source"]).all(), err
    assert e["ft"].mean() < 0.85 * e["mix"].mean() and np.mean(rho["ft"]) > np.mean(rho["mix"]) + 0.02, (err, rho)


def test_the_leave_one_out_choice_of_refine():
    """Residuals of the mix that are a read-out of H: a strength wins and recovers them;
    residuals that are noise unrelated to H: "no change" wins and the prediction stays put."""
    rng, H, _ = _base_like(1)
    signal = H @ rng.normal(size=H.shape[1])
    signal = 0.3 * (signal - signal.mean()) / signal.std()
    t, ev = np.zeros(12), np.arange(12, len(H))
    rf = refine(H[:12], t + signal[:12], t)
    assert rf.weights["none"] < 0.1, rf.weights
    assert np.sqrt(np.mean((rf.predict_log(H[ev]) - signal[ev]) ** 2)) < 0.7 * signal.std()
    noise = rng.normal(scale=0.05, size=12)
    rf = refine(H[:12], t + noise, t)
    assert max(rf.weights, key=rf.weights.get) == "none", rf.weights
    assert np.abs(rf.predict_log(H[ev])).mean() < 0.02


def test_refine_refuses_mismatched_features():
    with pytest.raises(CostModelError, match=r"H must be \(shots, features\) for 4 shots"):
        refine(np.ones((3, 5)), np.ones(4), np.ones(4))
