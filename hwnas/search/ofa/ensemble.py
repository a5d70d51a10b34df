"""The accuracy predictor that specialisation uses: an ensemble chosen by cross-validation
on the training subnets only.

Why not one MLP: with ~100 labelled subnets and labels whose measurement noise is a
large part of their spread, an MLP over one-hot bits ranks held-out subnets barely better
than ridge regression. Three members with different biases see the richer features of
:mod:`hwnas.search.ofa.features` (one-hot + per-stage depth/kernel/expansion,
resolution, log MACs/params):

* ``ridge`` - linear, its penalty chosen by leave-one-out (closed form);
* ``mlp`` - a small MLP trained on squared error plus a pairwise logistic ranking loss
  (specialisation needs the order, not the value);
* ``gbt`` - gradient-boosted shallow trees (scikit-learn, a core dependency; stored as
  arrays through :class:`hwnas.cost_models.trees.TreeEnsemble`, so loading needs no pickle).

K-fold cross-validation on the training subnets scores every member and every mean of
two or three of them by pooled out-of-fold Kendall tau (RMSE breaks ties); the winner is
refitted on all training subnets. The held-out subnets are never seen by this choice.

Saved like the cost models: ``manifest.json`` (format ``hwnas-acc-predictor/2``) and
``weights.pt``, a flat ``state_dict`` of tensors read with ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from hwnas.cost_models.trees import TreeEnsemble
from hwnas.errors import ConfigError, CostModelError
from hwnas.search.ofa.features import features
from hwnas.search.ofa.predictor import (
    MANIFEST,
    WEIGHTS,
    AccuracyPredictor,
    _differs,
    _mlp,
    held_out_metrics,
    read_manifest_json,
)
from hwnas.search.spaces.base import Arch, SearchSpace

FORMAT = "hwnas-acc-predictor/2"
MEMBERS = ("ridge", "mlp", "gbt")
ALPHAS = (0.1, 1.0, 10.0, 100.0)
HIDDEN = [64, 64]


def fit_ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Ridge weights (bias as the last entry), the penalty chosen by closed-form leave-one-out."""
    xb = np.column_stack([x, np.ones(len(x))])
    best: tuple[float, np.ndarray] | None = None
    for alpha in ALPHAS:
        reg = alpha * np.eye(xb.shape[1])
        reg[-1, -1] = 0.0
        inv = np.linalg.pinv(xb.T @ xb + reg)
        w = inv @ xb.T @ y
        hat = np.einsum("ij,jk,ik->i", xb, inv, xb)
        loo = float(np.mean(((y - xb @ w) / np.maximum(1 - hat, 1e-9)) ** 2))
        if best is None or loo < best[0]:
            best = (loo, w)
    assert best is not None
    return best[1], float(best[0])


def fit_mlp(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 200, rank_weight: float = 1.0) -> torch.nn.Module:
    """Squared error plus a pairwise logistic loss on every pair of training subnets."""
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)
    sign = torch.sign(yt - yt.T)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _mlp(x.shape[1], HIDDEN)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
        for _ in range(epochs):
            opt.zero_grad()
            out = net(xt)
            rank = torch.nn.functional.softplus(-sign * (out - out.T))[sign != 0].mean() if rank_weight else 0.0
            loss = torch.mean((out - yt) ** 2) + rank_weight * rank
            loss.backward()
            opt.step()
    return net.eval()


def fit_gbt(x: np.ndarray, y: np.ndarray, seed: int) -> TreeEnsemble:
    from sklearn.ensemble import GradientBoostingRegressor

    est = GradientBoostingRegressor(n_estimators=100, max_depth=2, learning_rate=0.08, subsample=0.8,
                                    random_state=seed).fit(x, y)
    return TreeEnsemble.from_sklearn(est)


class EnsemblePredictor:
    """Members chosen by K-fold CV on the training subnets; the mean of the chosen ones."""

    def __init__(self, space: SearchSpace, space_id: Mapping[str, Any], seed: int = 0, folds: int = 5) -> None:
        self.space, self.space_id, self.seed, self.folds = space, dict(space_id), seed, folds
        self.chosen: list[str] = []
        self.x_mu = self.x_sd = np.zeros(0)
        self.y_mean, self.y_std = 0.0, 1.0
        self.ridge_w = np.zeros(0)
        self.net: torch.nn.Module | None = None
        self.trees: TreeEnsemble | None = None
        self.cv: dict[str, dict[str, float]] = {}
        self.metrics: dict[str, Any] = {}

    def _x(self, archs: Sequence[Arch]) -> np.ndarray:
        return (features(self.space, archs) - self.x_mu) / self.x_sd

    def _fit_members(self, x: np.ndarray, y: np.ndarray, members: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "ridge" in members:
            out["ridge"] = fit_ridge(x, y)[0]
        if "mlp" in members:
            out["mlp"] = fit_mlp(x, y, self.seed)
        if "gbt" in members:
            out["gbt"] = fit_gbt(x, y, self.seed)
        return out

    @staticmethod
    @torch.no_grad()
    def _member_predict(name: str, model: Any, x: np.ndarray) -> np.ndarray:
        if name == "ridge":
            return np.column_stack([x, np.ones(len(x))]) @ model
        if name == "mlp":
            return model(torch.from_numpy(x.astype(np.float32))).numpy().reshape(-1).astype(np.float64)
        return model.predict(x)

    def fit(self, archs: Sequence[Arch], y: Sequence[float]) -> "EnsemblePredictor":
        raw = features(self.space, archs)
        self.x_mu, sd = raw.mean(0), raw.std(0)
        self.x_sd = np.where(sd > 0, sd, 1.0)
        x = (raw - self.x_mu) / self.x_sd
        yy = np.asarray(y, dtype=np.float64)
        self.y_mean, self.y_std = float(yy.mean()), float(yy.std() or 1.0)
        t = (yy - self.y_mean) / self.y_std
        oof = {m: np.zeros(len(t)) for m in MEMBERS}
        fold_of = np.random.default_rng(self.seed + 3).permutation(len(t)) % max(2, min(self.folds, len(t)))
        for f in np.unique(fold_of):
            tr, te = fold_of != f, fold_of == f
            for name, model in self._fit_members(x[tr], t[tr], MEMBERS).items():
                oof[name][te] = self._member_predict(name, model, x[te])
        combos = [c for r in (1, 2, 3) for c in itertools.combinations(MEMBERS, r)]
        self.cv = {"+".join(c): held_out_metrics(t, np.mean([oof[m] for m in c], axis=0)) for c in combos}
        best = max(self.cv, key=lambda k: (round(self.cv[k]["kendall_tau"], 6), -self.cv[k]["rmse"]))
        self.chosen = best.split("+")
        models = self._fit_members(x, t, self.chosen)
        self.ridge_w, self.net, self.trees = models.get("ridge", np.zeros(0)), models.get("mlp"), models.get("gbt")
        return self

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        if not len(archs):
            return np.zeros(0)
        x = self._x(archs)
        model = {"ridge": self.ridge_w, "mlp": self.net, "gbt": self.trees}
        out = np.mean([self._member_predict(m, model[m], x) for m in self.chosen], axis=0)
        return out * self.y_std + self.y_mean

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {"x_mu": torch.from_numpy(self.x_mu), "x_sd": torch.from_numpy(self.x_sd),
                 "ridge.w": torch.from_numpy(np.asarray(self.ridge_w, dtype=np.float64))}
        if self.net is not None:
            state.update({f"mlp.{k}": v for k, v in self.net.state_dict().items()})
        if self.trees is not None:
            state.update({f"gbt.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.trees.arrays().items()})
        torch.save(state, d / WEIGHTS)
        manifest = {"format": FORMAT, "space": self.space_id, "features": int(len(self.x_mu)), "chosen": self.chosen,
                    "hidden": HIDDEN, "gbt": self.trees.meta() if self.trees is not None else None,
                    "seed": self.seed, "folds": self.folds, "y_mean": self.y_mean, "y_std": self.y_std,
                    "cv": self.cv, "metrics": self.metrics, "sha256": {WEIGHTS: _sha256(d / WEIGHTS)},
                    **dict(extra or {})}
        (d / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return d

    @classmethod
    def from_manifest(cls, d: Path, m: Mapping[str, Any], space: SearchSpace,
                      space_id: Mapping[str, Any]) -> "EnsemblePredictor":
        if _sha256(d / WEIGHTS) != (m.get("sha256") or {}).get(WEIGHTS):
            raise ConfigError(f"{d / WEIGHTS}: sha256 differs from the manifest's (file changed or corrupted)")
        p = cls(space, space_id, int(m["seed"]), int(m["folds"]))
        state = torch.load(d / WEIGHTS, map_location="cpu", weights_only=True)
        try:
            p.x_mu, p.x_sd = state["x_mu"].numpy(), state["x_sd"].numpy()
            p.ridge_w, p.chosen = state["ridge.w"].numpy(), [str(c) for c in m["chosen"]]
            if "mlp" in p.chosen:
                p.net = _mlp(int(m["features"]), m["hidden"])
                p.net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("mlp.")})
                p.net.eval()
            if "gbt" in p.chosen:
                p.trees = TreeEnsemble.from_arrays({k[4:]: v.numpy() for k, v in state.items()
                                                    if k.startswith("gbt.")}, m["gbt"])
        except (KeyError, RuntimeError, TypeError, CostModelError) as exc:
            raise ConfigError(f"{d / WEIGHTS}: does not fit the manifest ({str(exc).splitlines()[0]})") from None
        if len(p.x_mu) != int(m["features"]) or int(m["features"]) != features(space, [space.sample(
                np.random.default_rng(0))]).shape[1]:
            raise ConfigError(f"{d / WEIGHTS}: {len(p.x_mu)} features, this space's encoding has another count")
        p.y_mean, p.y_std = float(m["y_mean"]), float(m["y_std"])
        p.cv, p.metrics = dict(m.get("cv") or {}), dict(m.get("metrics") or {})
        return p


def load_predictor(directory: str | Path, space: SearchSpace,
                   space_id: Mapping[str, Any]) -> AccuracyPredictor | EnsemblePredictor:
    """A saved accuracy predictor of either format; another space or a changed file is one line."""
    d = Path(directory)
    path = d / MANIFEST
    m = read_manifest_json(d)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        return AccuracyPredictor.load(d, space, space_id)  # format 1, or refused there by name
    missing = [k for k in ("space", "features", "chosen", "seed", "folds", "y_mean", "y_std") if k not in m]
    if missing:
        raise ConfigError(f"{path}: missing field(s) {', '.join(missing)}")
    if m["space"] != dict(space_id):
        raise ConfigError(f"{d}: accuracy predictor of another space ({_differs(m['space'], space_id)})")
    return EnsemblePredictor.from_manifest(d, m, space, space_id)


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"{path}: missing (an accuracy predictor folder holds {MANIFEST} and {WEIGHTS})")
    return hashlib.sha256(path.read_bytes()).hexdigest()
