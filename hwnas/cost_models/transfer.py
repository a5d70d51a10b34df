"""Transfer to a new device from k measured networks (HELP's hardware-embedding idea).

Why this way: a new device's latencies are, to a good approximation, a mix of the
behaviours of devices already measured (memory-bound like one GPU, compute-bound like
one CPU). A multi-output MLP learns every source device at once (standardised log
latency per device); a new device is then described by k measured networks — its
"hardware embedding" — through a ridge regression of its log latency on the source
outputs. The ridge strength is chosen by closed-form leave-one-out error on those same
k networks, so nothing else of the new device is needed. With k in 5..50 this is a
regression with ~D (number of source devices) coefficients, where fine-tuning a whole
network would overfit.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.cost_models.base import mlp_head
from hwnas.cost_models.features import NodeFeatures, encode, ops_of
from hwnas.cost_models.mlp import MLPModel
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec

ALPHAS: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


class MultiDeviceMLP:
    """One MLP trunk, one output per source device, table-free features (as ``mlp``)."""

    def __init__(self, hidden: int = 128, steps: int = 3000, batch_size: int = 64, lr: float = 2e-3,
                 weight_decay: float = 1e-3, seed: int = 0) -> None:
        self.hidden, self.steps, self.batch_size = hidden, steps, batch_size
        self.lr, self.weight_decay, self.seed = lr, weight_decay, seed

    def _x(self, networks: Sequence[NetworkSpec]) -> Any:
        import torch

        x = self.feat_.features(encode(self.feat_.nodes_, networks))
        return (torch.from_numpy(x) - self.x_mu_) / self.x_sd_

    def fit(self, networks: Sequence[NetworkSpec], Y: Any, devices: Sequence[str] | None = None) -> "MultiDeviceMLP":
        """``Y``: (n, D) latencies > 0 (NaN where a device lacks a network)."""
        import torch

        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[0] != len(networks):
            raise CostModelError(f"Y must be (networks, devices); got {Y.shape} for {len(networks)} networks")
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.devices_ = list(devices or [f"d{i}" for i in range(Y.shape[1])])
        self.feat_ = MLPModel()
        self.feat_.nodes_ = NodeFeatures(ops_of(networks), None)
        enc = encode(self.feat_.nodes_, networks)
        self.feat_.max_len_ = int(enc.lengths.max())
        x = torch.from_numpy(self.feat_.features(enc))
        self.x_mu_, self.x_sd_ = x.mean(0), x.std(0).clamp_min(1e-3)
        x = (x - self.x_mu_) / self.x_sd_
        logy = np.log(np.where(Y > 0, Y, np.nan))
        self.t_mu_, self.t_sd_ = np.nanmean(logy, 0), np.maximum(np.nanstd(logy, 0), 1e-6)
        t = torch.from_numpy(((logy - self.t_mu_) / self.t_sd_).astype(np.float32))
        mask = ~torch.isnan(t)
        t = torch.nan_to_num(t)
        self.module_ = mlp_head(x.shape[1], self.hidden, Y.shape[1])
        opt = torch.optim.AdamW(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.steps)
        bs = min(self.batch_size, len(networks))
        for _ in range(self.steps):
            idx = torch.from_numpy(rng.choice(len(networks), bs, replace=False))
            err = (self.module_(x[idx]) - t[idx]) ** 2 * mask[idx]
            loss = err.sum() / mask[idx].sum().clamp_min(1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        self.module_.eval()
        return self

    def embed(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        """(n, D) standardised log-latency predictions for every source device."""
        import torch

        with torch.inference_mode():
            return self.module_(self._x(networks)).double().numpy()

    def predict_device(self, networks: Sequence[NetworkSpec], device: str) -> np.ndarray:
        j = self.devices_.index(device)
        return np.exp(self.t_mu_[j] + self.t_sd_[j] * self.embed(networks)[:, j])

    def adapt(self, networks: Sequence[NetworkSpec], y: Any) -> "AdaptedModel":
        """A predictor for a new device from its k measured networks."""
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(networks) or len(y) < 2 or np.any(y <= 0):
            raise CostModelError("adapt needs >= 2 networks with measured values > 0")
        return AdaptedModel(self, *ridge_loo(self.embed(networks), np.log(y)))


def ridge_loo(Z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Ridge of ``t`` on ``Z`` (centred), alpha by leave-one-out error; (w, b, alpha)."""
    zm, tm = Z.mean(0), t.mean()
    Zc, tc = Z - zm, t - tm
    n = len(t)
    best: tuple[float, np.ndarray, float] | None = None
    for a in ALPHAS:
        A = Zc.T @ Zc + a * np.eye(Z.shape[1])
        w = np.linalg.solve(A, Zc.T @ tc)
        H = Zc @ np.linalg.solve(A, Zc.T) + 1.0 / n  # hat matrix incl. the intercept
        loo = (tc - Zc @ w) / np.maximum(1.0 - np.diag(H), 1e-6)
        score = float(np.mean(loo ** 2))
        if best is None or score < best[0]:
            best = (score, w, a)
    assert best is not None
    _, w, a = best
    return w, float(tm - zm @ w), a


class AdaptedModel:
    """Predictions for the new device: exp(embedding @ w + b)."""

    def __init__(self, base: MultiDeviceMLP, w: np.ndarray, b: float, alpha: float) -> None:
        self.base, self.w_, self.b_, self.alpha_ = base, w, b, alpha

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        return np.exp(self.base.embed(networks) @ self.w_ + self.b_)
