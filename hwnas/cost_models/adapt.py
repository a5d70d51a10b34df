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

Two more, for the shots a user really gets:

* integer-millisecond columns (phones that report ``9``, ``16``, ``31`` ms) say only that
  the latency lies in ``[y - q/2, y + q/2)``, and many shots tie. A least-squares fit to
  the rounded values treats the rounding as signal; here a quantised column (every value
  a multiple of a decimal step ``q``, detected or given) is fit as *interval-censored*
  data: each iteration the target of a shot is the point of its interval nearest the
  current prediction, so any order of tied shots that the source devices suggest costs
  nothing. Leave-one-out errors are distances to the intervals, and the rounding's own
  variance (``h² / 3`` for a half-width ``h`` in log space) is added to every candidate's
  error, so a candidate that happens to hit ten rounded values is not believed more than
  the rounding allows — without that floor the weights collapse onto one lucky candidate
  and the result swings between shot draws;
* a shrinkage candidate, "the new device behaves like the base's mean device" (offset
  and slope on the mean of all source outputs): with unlucky shots (all from one corner
  of the space) the single-device and ridge candidates can fit the corner and
  extrapolate badly; the mean device is the prior a few shots should move away from only
  when they agree.

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


#: Decimal steps a quantised column is checked against, coarsest first.
_STEPS: tuple[float, ...] = tuple(sorted((m * 10.0 ** e for e in range(-3, 3) for m in (1, 2, 5)), reverse=True))


def quantum(y: np.ndarray) -> float:
    """The coarsest decimal step (1, 2 or 5 times 10^-3 .. 10^2) that every value of ``y`` is
    a whole multiple of, or 0.0 when there is none (real-valued measurements)."""
    y = np.asarray(y, dtype=np.float64)
    for q in _STEPS:
        r = y / q
        if np.all(np.abs(r - np.round(r)) <= 1e-6 * np.maximum(r, 1.0)) and np.all(np.round(r) >= 1):
            return q
    return 0.0


@dataclass(frozen=True)
class Targets:
    """Log latencies of the shots as intervals ``[lo, hi]`` (equal for exact values)."""

    t: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, t: np.ndarray, step: float | None) -> "Targets":
        y = np.exp(t)
        q = quantum(y) if step is None else float(step)
        if not q > 0:
            return cls(t, t, t)
        return cls(t, np.log(np.maximum(y - q / 2, y / 2)), np.log(y + q / 2))

    def take(self, keep: np.ndarray) -> "Targets":
        return Targets(self.t[keep], self.lo[keep], self.hi[keep])

    @property
    def noise(self) -> float:
        """Mean variance of a value spread evenly over its interval (0 for exact values)."""
        return float(np.mean((self.hi - self.lo) ** 2) / 12.0)

    def miss(self, pred: np.ndarray) -> np.ndarray:
        """Signed distance of predictions from the intervals (0 inside)."""
        return np.where(pred < self.lo, self.lo - pred, np.where(pred > self.hi, self.hi - pred, 0.0))


def huber_fit(X: np.ndarray, t: np.ndarray | Targets, alpha: float = 0.0, iters: int = 8
              ) -> tuple[np.ndarray, np.ndarray]:
    """Huber regression by reweighting, on exact or interval targets; returns coefficients
    and the leave-one-out misses (LOO residuals; distances to the intervals) of the last fit."""
    tg = t if isinstance(t, Targets) else Targets(t, t, t)
    obs_w = np.ones(len(tg.t))
    target = tg.t
    coef, loo = _wls(X, target, obs_w, alpha)
    for _ in range(iters):
        pred = X @ coef
        target = np.clip(pred, tg.lo, tg.hi)  # interval-censored: the nearest point of each interval
        scale = 1.4826 * float(np.median(np.abs(tg.t - pred))) + 1e-3
        obs_w = np.minimum(1.0, _HUBER_K * scale / np.maximum(np.abs(target - pred), 1e-12))
        coef, loo = _wls(X, target, obs_w, alpha)
    return coef, tg.miss(target - loo)


def adapt(Z: np.ndarray, t: np.ndarray, sources: list[str] | None = None, *,
          min_shots: int = MIN_SHOTS, step: float | None = None, shrink_mean: bool = True) -> Adaptation:
    """Combine source outputs ``Z`` (k, D) into a predictor of ``t`` (k,) = log latency.

    ``step``: the quantisation of the measured latencies (e.g. 1.0 for whole milliseconds);
    None detects it (:func:`quantum`), 0 treats the values as exact. ``shrink_mean``: offer
    the base's mean device as a candidate."""
    Z = np.asarray(Z, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    k, D = Z.shape
    if k < min_shots:
        raise CostModelError(f"few-shot transfer needs at least {MIN_SHOTS} measured networks, got {k}")
    tg = Targets.of(t, step)
    names = sources or [f"d{j}" for j in range(D)]
    one = np.ones((k, 1))
    cands: list[tuple[str, np.ndarray, float, float]] = []
    singles = [(f"like:{names[j]}", np.eye(D)[j]) for j in range(D)]
    if shrink_mean:
        singles.append(("mean-of-sources", np.full(D, 1.0 / D)))
    for name, direction in singles:
        coef, loo = huber_fit(np.hstack([one, (Z @ direction)[:, None]]), tg)
        cands.append((name, coef[1] * direction, float(coef[0]), float(np.mean(loo ** 2))))
    for a in ALPHAS:
        coef, loo = huber_fit(np.hstack([one, Z]), tg, alpha=a)
        cands.append((f"ridge:{a:g}", coef[1:], float(coef[0]), float(np.mean(loo ** 2))))
    mse = np.array([c[3] for c in cands]) + tg.noise
    logp = -0.5 * k * np.log(np.maximum(mse, 1e-12))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    w = sum(pi * c[1] for pi, c in zip(p, cands))
    b = float(sum(pi * c[2] for pi, c in zip(p, cands)))
    return Adaptation(np.asarray(w, dtype=np.float64), b, {c[0]: float(pi) for pi, c in zip(p, cands)},
                      {c[0]: c[3] for c in cands})


def loo_predictions(Z: np.ndarray, t: np.ndarray, sources: list[str] | None = None, *,
                    step: float | None = None, H: np.ndarray | None = None) -> np.ndarray:
    """Honest leave-one-out: shot i predicted by the whole procedure run on the others
    (with 3 shots the inner fits see only 2, so the estimate is pessimistic there). The
    quantisation step is detected once on all k shots, not per fold. With the base's hidden
    features ``H``, each fold also refines the last layer (:func:`refine`, whose own
    leave-one-out residuals come from the fold's shots only)."""
    k = len(t)
    if k < MIN_SHOTS:
        raise CostModelError(f"few-shot transfer needs at least {MIN_SHOTS} measured networks, got {k}")
    t = np.asarray(t, dtype=np.float64)
    q = quantum(np.exp(t)) if step is None else step
    out = np.empty(k)
    for i in range(k):
        keep = np.arange(k) != i
        out[i] = float(adapt(Z[keep], t[keep], sources, min_shots=2, step=q).predict_log(Z[i:i + 1])[0])
        if H is not None and k - 1 >= MIN_SHOTS:
            inner = loo_predictions(Z[keep], t[keep], sources, step=q)
            out[i] += float(refine(H[keep], t[keep], inner, step=q).predict_log(H[i:i + 1])[0])
    return out


#: Ridge strengths of the last-layer refinement, in units of the shots' mean squared (centred)
#: hidden-feature norm, so that they mean the same for any width and any number of members.
REFINE_ALPHAS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class Refinement:
    """log y_new ≈ (mix) + H @ delta + c: the base's last layer fine-tuned on the shots."""

    delta: np.ndarray
    c: float
    weights: dict[str, float]  # "none" or the strength -> posterior weight
    loo_mse: dict[str, float]

    def predict_log(self, H: np.ndarray) -> np.ndarray:
        return np.asarray(H, dtype=np.float64) @ self.delta + self.c


def refine(H: np.ndarray, t: np.ndarray, mix_loo: np.ndarray, *, step: float | None = None,
           alphas: tuple[float, ...] = REFINE_ALPHAS) -> Refinement:
    """Fine-tune the base's last layer on the shots, under a ridge prior towards the mix.

    Why: the mix of :func:`adapt` can only say what the source devices already say; a new
    device may weigh an op (say, a 5x5 depthwise kernel on a phone) differently from all of
    them. Every source output is a read-out of the base's hidden features ``H`` (the last
    layer's input, see ``MultiDeviceModel.embed_hidden``), so the new device's read-out is
    the mix plus a change ``delta`` of that layer. ``delta`` is fit to the mix's honest
    leave-one-out residuals on the shots (``t - mix_loo``; for integer-millisecond columns,
    the distance to each rounding interval) by a Huber ridge with strength ``alpha``
    (a Gaussian prior centred on the unchanged layer), and the strengths and "no change"
    are averaged with the same leave-one-out likelihood weights as :func:`adapt`'s
    candidates. With 3-50 shots and a ~150-wide ``H`` the prior does the work: residuals
    that ``H`` does not explain leave "no change" the winner, so the refinement never
    makes a mix that already fits worse by more than the selection noise."""
    H = np.asarray(H, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    k = len(t)
    if H.ndim != 2 or H.shape[0] != k or len(mix_loo) != k:
        raise CostModelError(f"refine: H must be (shots, features) for {k} shots, got {H.shape}")
    if k < MIN_SHOTS:
        raise CostModelError(f"few-shot transfer needs at least {MIN_SHOTS} measured networks, got {k}")
    tg = Targets.of(t, step)
    r = tg.miss(np.asarray(mix_loo, dtype=np.float64))  # > 0 where the mix is too low
    mu = H.mean(0)
    Hc = H - mu
    scale = max(float(np.mean(np.sum(Hc ** 2, axis=1))), 1e-12)
    # the penalised change lies in the span of the shots' features (a part orthogonal to it
    # changes no fit and only adds to the penalty), so fit in that k-dimensional basis:
    # exactly the same ridge, at the cost of k x k systems instead of width x width
    _, s, vt = np.linalg.svd(Hc, full_matrices=False)
    V = vt[s > 1e-10 * max(float(s[0]), 1e-300)].T
    X = np.hstack([np.ones((k, 1)), Hc @ V])
    fits: list[tuple[str, np.ndarray, float, float]] = [("none", np.zeros(H.shape[1]), 0.0, float(np.mean(r ** 2)))]
    for a in alphas:
        coef, loo = huber_fit(X, r, alpha=a * scale)
        delta = V @ coef[1:]
        fits.append((f"{a:g}", delta, float(coef[0] - mu @ delta), float(np.mean(loo ** 2))))
    mse = np.array([f[3] for f in fits]) + tg.noise
    logp = -0.5 * k * np.log(np.maximum(mse, 1e-12))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    delta = np.sum([pi * f[1] for pi, f in zip(p, fits)], axis=0)
    return Refinement(delta, float(sum(pi * f[2] for pi, f in zip(p, fits))),
                      {f[0]: float(pi) for pi, f in zip(p, fits)}, {f[0]: f[3] for f in fits})
