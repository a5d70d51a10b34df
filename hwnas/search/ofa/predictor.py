"""The accuracy predictor: subnet architecture (+ resolution) -> inherited accuracy.

Why a predictor: specialising for a device means comparing thousands of subnets; scoring
each with the supernet costs a BN recalibration and a pass over the held-out split, a
predictor answers in microseconds (OFA: a 3-layer MLP over the architecture encoding).

The encoding is one-hot per *active* decision of the space (a stage's depth, the
expansion and kernel of each block that runs, the resolution); blocks a stage's depth
skips are all zeros, so equal networks encode equally. Any space with ``active`` works
(mbv3, mbv2, ...).

Saved like the cost models, without pickle: ``manifest.json`` (format, space and its
options, architecture of the MLP, target scaling, held-out metrics, sha256 of the
weights) and ``weights.pt`` (a ``state_dict`` loaded with ``weights_only=True``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.spaces.base import Arch, SearchSpace

FORMAT = "hwnas-acc-predictor/1"
MANIFEST, WEIGHTS = "manifest.json", "weights.pt"


def encoding_size(space: SearchSpace) -> int:
    return int(sum(d.size for d in space.decisions))


def encode(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One row per arch: the one-hot choice of every active decision, zeros elsewhere."""
    sizes = [d.size for d in space.decisions]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    x = np.zeros((len(archs), int(sum(sizes))), dtype=np.float32)
    for i, a in enumerate(archs):
        for j in space.active(a):
            x[i, offsets[j] + a[j]] = 1.0
    return x


def _mlp(n_in: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.ReLU()]
        n_in = h
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers)


class AccuracyPredictor:
    """An MLP over :func:`encode`, trained on standardised accuracies (full batch, Adam)."""

    def __init__(self, space: SearchSpace, space_id: Mapping[str, Any], hidden: Sequence[int] = (64, 64),
                 epochs: int = 600, lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> None:
        self.space, self.space_id = space, dict(space_id)
        self.hidden, self.epochs, self.lr, self.weight_decay, self.seed = list(hidden), epochs, lr, weight_decay, seed
        self.net = _mlp(encoding_size(space), self.hidden)
        self.y_mean, self.y_std = 0.0, 1.0
        self.metrics: dict[str, Any] = {}

    def fit(self, archs: Sequence[Arch], y: Sequence[float]) -> "AccuracyPredictor":
        x = torch.from_numpy(encode(self.space, archs))
        yy = np.asarray(y, dtype=np.float64)
        self.y_mean, self.y_std = float(yy.mean()), float(yy.std() or 1.0)
        t = torch.from_numpy(((yy - self.y_mean) / self.y_std).astype(np.float32)).reshape(-1, 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = _mlp(x.shape[1], self.hidden)
            opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            for _ in range(self.epochs):
                opt.zero_grad()
                loss = torch.mean((self.net(x) - t) ** 2)
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        if not len(archs):
            return np.zeros(0)
        out = self.net(torch.from_numpy(encode(self.space, archs))).numpy().reshape(-1)
        return out.astype(np.float64) * self.y_std + self.y_mean

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), d / WEIGHTS)
        manifest = {"format": FORMAT, "space": self.space_id, "encoding_size": encoding_size(self.space),
                    "hidden": self.hidden, "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                    "seed": self.seed, "y_mean": self.y_mean, "y_std": self.y_std, "metrics": self.metrics,
                    "sha256": {WEIGHTS: _sha256(d / WEIGHTS)}, **dict(extra or {})}
        (d / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return d

    @classmethod
    def load(cls, directory: str | Path, space: SearchSpace, space_id: Mapping[str, Any]) -> "AccuracyPredictor":
        """A saved predictor for ``space``; another space, a changed or foreign file is one line."""
        d = Path(directory)
        m = read_manifest(d)
        if m.get("space") != dict(space_id):
            raise ConfigError(f"{d}: accuracy predictor of another space ({_differs(m.get('space'), space_id)})")
        if _sha256(d / WEIGHTS) != (m.get("sha256") or {}).get(WEIGHTS):
            raise ConfigError(f"{d / WEIGHTS}: sha256 differs from the manifest's (file changed or corrupted)")
        p = cls(space, space_id, m["hidden"], m["epochs"], m["lr"], m["weight_decay"], m["seed"])
        try:
            p.net.load_state_dict(torch.load(d / WEIGHTS, map_location="cpu", weights_only=True))
        except (RuntimeError, KeyError) as exc:
            raise ConfigError(f"{d / WEIGHTS}: does not fit the manifest's MLP ({str(exc).splitlines()[0]})") from None
        p.net.eval()
        p.y_mean, p.y_std, p.metrics = float(m["y_mean"]), float(m["y_std"]), dict(m.get("metrics") or {})
        return p


def read_manifest_json(d: Path) -> Any:
    """The parsed manifest of an accuracy predictor folder, of any format (one line when absent or unreadable)."""
    path = d / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{d}: not an accuracy predictor folder (no {MANIFEST})")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__})") from None


def read_manifest(d: Path) -> dict[str, Any]:
    path = d / MANIFEST
    m = read_manifest_json(d)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ConfigError(f"{path}: expected format {FORMAT!r}, got {m.get('format') if isinstance(m, dict) else m!r}")
    missing = [k for k in ("space", "hidden", "epochs", "lr", "weight_decay", "seed", "y_mean", "y_std") if k not in m]
    if missing:
        raise ConfigError(f"{path}: missing field(s) {', '.join(missing)}")
    return m


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"{path}: missing (an accuracy predictor folder holds {MANIFEST} and {WEIGHTS})")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _differs(theirs: Any, mine: Mapping[str, Any]) -> str:
    """The first difference between the predictor's space and the run's, in words."""
    if not isinstance(theirs, Mapping):
        return f"its manifest names {theirs!r}"
    if theirs.get("type") != mine.get("type"):
        return f"{theirs.get('type')!r}, the run's is {mine.get('type')!r}"
    k = next(k for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k))
    return f"{mine.get('type')} with {k}={theirs.get(k)!r}, the run's has {k}={mine.get(k)!r}"


def ridge_predictions(space: SearchSpace, train: Sequence[Arch], y: Sequence[float], test: Sequence[Arch],
                      alpha: float = 1.0) -> np.ndarray:
    """Ridge regression on the same encoding (the linear baseline reported beside the MLP)."""
    x, xt = encode(space, train).astype(np.float64), encode(space, test).astype(np.float64)
    yy = np.asarray(y, dtype=np.float64)
    mu = yy.mean()
    w = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (yy - mu))
    return xt @ w + mu


def held_out_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """RMSE and Kendall tau (the ranking is what specialisation needs)."""
    from scipy.stats import kendalltau

    t, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    tau = float(kendalltau(t, p).statistic) if len(t) > 1 and np.ptp(t) > 0 and np.ptp(p) > 0 else 0.0
    return {"rmse": float(np.sqrt(np.mean((t - p) ** 2))), "kendall_tau": tau, "n": int(len(t))}
