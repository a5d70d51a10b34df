"""Few-shot adaptation: a new device's log latency as a combination of source devices.

Why this estimator (measured in ``bench/transfer.py``, see the README): with k = 5..50
measured networks and ~10 source devices, an ordinary ridge regression of the new
device's log latency on the source outputs picks up whatever two or three odd shots
say (a phone whose measurement of one network is off by 50%), and then its error
*grows* with k for some devices. Two changes make it stable and monotone in k:

* every fit is a Huber regression (iteratively reweighted least squares), so a shot
  far off the line loses its weight instead of bending the line;
* instead of one model, a Bayesian-style average over candidate models — "the new
  device behaves like source device j" (an offset and a slope on one output, i.e.
  shrinkage towards the nearest source device) and a ridge over all sources at a few
  strengths — weighted by their leave-one-out error on the k shots
  (``score ** (-k / 2)``, the Gaussian likelihood of the held-out residuals). With few
  shots the simple candidates win; with more, the ridge takes over.

Everything here is NumPy on (k, D) matrices: adapting costs microseconds, so the
honest nested leave-one-out report in :func:`loo_predictions` is cheap too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.errors import CostModelError

#: Ridge strengths of the all-sources candidates (inputs are standardised outputs).
ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0)
#: Fewest shots a transfer accepts: two points always fit a line exactly.
MIN_SHOTS = 3
_HUBER_K = 1.345  # Huber's tuning constant, in units of the robust residual scale


@dataclass(frozen=True)
class Adaptation:
    """log y_new ≈ Z @ w + b, with how it was chosen."""

    w: np.ndarray
    b: float
    weights: dict[str, float]  # candidate name -> posterior weight
    loo_mse: dict[str, float]  # candidate name -> leave-one-out mean squared error (log space)

    def predict_log(self, Z: np.ndarray) -> np.ndarray:
        return Z @ self.w + self.b


def _wls(X: np.ndarray, t: np.ndarray, obs_w: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ridge (intercept column 0 unpenalised): coefficients and leave-one-out residuals."""
    P = alpha * np.eye(X.shape[1])
    P[0, 0] = 0.0
    XtW = X.T * obs_w
    A = XtW @ X + P + 1e-9 * np.eye(X.shape[1])
    coef = np.linalg.solve(A, XtW @ t)
    h = np.einsum("ij,ji->i", X, np.linalg.solve(A, XtW))
    loo = (t - X @ coef) / np.maximum(1.0 - h, 1e-6)
    return coef, loo


def huber_fit(X: np.ndarray, t: np.ndarray, alpha: float = 0.0, iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Huber regression by reweighting; returns coefficients and LOO residuals of the last fit."""
    obs_w = np.ones(len(t))
    coef, loo = _wls(X, t, obs_w, alpha)
    for _ in range(iters):
        res = t - X @ coef
        scale = 1.4826 * float(np.median(np.abs(res))) + 1e-3
        obs_w = np.minimum(1.0, _HUBER_K * scale / np.maximum(np.abs(res), 1e-12))
        coef, loo = _wls(X, t, obs_w, alpha)
    return coef, loo


def adapt(Z: np.ndarray, t: np.ndarray, sources: list[str] | None = None, *,
          min_shots: int = MIN_SHOTS) -> Adaptation:
    """Combine source outputs ``Z`` (k, D) into a predictor of ``t`` (k,) = log latency."""
    Z = np.asarray(Z, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    k, D = Z.shape
    if k < min_shots:
        raise CostModelError(f"few-shot transfer needs at least {MIN_SHOTS} measured networks, got {k}")
    names = sources or [f"d{j}" for j in range(D)]
    one = np.ones((k, 1))
    cands: list[tuple[str, np.ndarray, float, float]] = []
    for j in range(D):
        coef, loo = huber_fit(np.hstack([one, Z[:, j:j + 1]]), t)
        w = np.zeros(D)
        w[j] = coef[1]
        cands.append((f"like:{names[j]}", w, float(coef[0]), float(np.mean(loo ** 2))))
    for a in ALPHAS:
        coef, loo = huber_fit(np.hstack([one, Z]), t, alpha=a)
        cands.append((f"ridge:{a:g}", coef[1:], float(coef[0]), float(np.mean(loo ** 2))))
    mse = np.array([c[3] for c in cands])
    logp = -0.5 * k * np.log(np.maximum(mse, 1e-12))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    w = sum(pi * c[1] for pi, c in zip(p, cands))
    b = float(sum(pi * c[2] for pi, c in zip(p, cands)))
    return Adaptation(np.asarray(w, dtype=np.float64), b, {c[0]: float(pi) for pi, c in zip(p, cands)},
                      {c[0]: c[3] for c in cands})


def loo_predictions(Z: np.ndarray, t: np.ndarray, sources: list[str] | None = None) -> np.ndarray:
    """Honest leave-one-out: shot i predicted by the whole procedure run on the others
    (with 3 shots the inner fits see only 2, so the estimate is pessimistic there)."""
    k = len(t)
    if k < MIN_SHOTS:
        raise CostModelError(f"few-shot transfer needs at least {MIN_SHOTS} measured networks, got {k}")
    out = np.empty(k)
    for i in range(k):
        keep = np.arange(k) != i
        out[i] = float(adapt(Z[keep], t[keep], sources, min_shots=2).predict_log(Z[i:i + 1])[0])
    return out
