"""Tree ensembles as plain arrays: fitted with scikit-learn, stored and evaluated without it.

Why not keep the scikit-learn object: the only way to store one is pickle (or a format
tied to the library's private internals), and a model folder must load safely anywhere
and across scikit-learn versions. A gradient-boosted (or random-forest) regressor is
fully described by its trees' split features, thresholds, children and leaf values, read
through scikit-learn's public ``tree_`` attributes; those arrays go into the model folder
(a ``state_dict`` read with ``weights_only=True``) and :meth:`TreeEnsemble.predict`
walks them with NumPy, reproducing ``estimator.predict`` exactly (tests check it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from hwnas.errors import CostModelError


@dataclass
class TreeEnsemble:
    """``offset + scale * combine(leaf values)``; ``combine`` is the sum (boosting) or the
    mean (forest). Node arrays of all trees are concatenated; ``roots`` index them."""

    feature: np.ndarray      # (nodes,) int32, -1 at leaves
    threshold: np.ndarray    # (nodes,) float64
    left: np.ndarray         # (nodes,) int32 global index, -1 at leaves
    right: np.ndarray        # (nodes,) int32
    value: np.ndarray        # (nodes,) float64
    roots: np.ndarray        # (trees,) int32
    offset: float = 0.0
    scale: float = 1.0
    mean: bool = False
    depth: int = 0

    @classmethod
    def from_sklearn(cls, est: Any) -> "TreeEnsemble":
        """From a fitted GradientBoostingRegressor (squared error) or RandomForestRegressor."""
        name = type(est).__name__
        if name == "GradientBoostingRegressor":
            trees = [e.tree_ for e in np.asarray(est.estimators_).reshape(-1)]
            init = getattr(est, "init_", None)
            if init is None or not hasattr(init, "constant_"):
                raise CostModelError("gradient boosting: only the default (mean) initial estimator is exported")
            offset, scale, mean = float(np.asarray(init.constant_).reshape(-1)[0]), float(est.learning_rate), False
        elif name == "RandomForestRegressor":
            trees = [e.tree_ for e in est.estimators_]
            offset, scale, mean = 0.0, 1.0, True
        else:
            raise CostModelError(f"cannot export {name}; use GradientBoostingRegressor or RandomForestRegressor")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "value")}
        roots, base, depth = [], 0, 0
        for t in trees:
            n = t.node_count
            leaf = t.children_left == -1
            parts["feature"].append(np.where(leaf, -1, t.feature).astype(np.int32))
            parts["threshold"].append(t.threshold.astype(np.float64))
            parts["left"].append(np.where(leaf, -1, t.children_left + base).astype(np.int32))
            parts["right"].append(np.where(leaf, -1, t.children_right + base).astype(np.int32))
            parts["value"].append(t.value.reshape(n, -1)[:, 0].astype(np.float64))
            roots.append(base)
            base += n
            depth = max(depth, int(t.max_depth))
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(cat["feature"], cat["threshold"], cat["left"], cat["right"], cat["value"],
                   np.asarray(roots, dtype=np.int32), offset, scale, mean, depth)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw prediction for rows of ``x`` (n, features), as scikit-learn computes it
        (features compared in float32, thresholds in float64)."""
        x32 = np.asarray(x, dtype=np.float32)
        if x32.ndim != 2:
            raise CostModelError(f"tree ensemble: expected a 2-D feature array, got shape {x32.shape}")
        n = x32.shape[0]
        if n == 0 or len(self.roots) == 0:
            return np.full(n, self.offset)
        idx = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth + 1):
            leaf = self.left[idx] < 0
            if leaf.all():
                break
            feat = np.maximum(self.feature[idx], 0)
            go_left = x32[rows, feat].astype(np.float64) <= self.threshold[idx]
            idx = np.where(leaf, idx, np.where(go_left, self.left[idx], self.right[idx]))
        leaves = self.value[idx]
        combined = leaves.mean(1) if self.mean else leaves.sum(1)
        return self.offset + self.scale * combined

    # -- persistence: tensors + JSON -------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left, "right": self.right,
                "value": self.value, "roots": self.roots}

    def meta(self) -> dict[str, Any]:
        return {"offset": self.offset, "scale": self.scale, "mean": self.mean, "depth": self.depth,
                "trees": int(len(self.roots)), "nodes": int(len(self.feature))}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> "TreeEnsemble":
        try:
            a = {k: np.asarray(arrays[k]) for k in ("feature", "threshold", "left", "right", "value", "roots")}
        except KeyError as exc:
            raise CostModelError(f"tree ensemble: missing array {exc.args[0]!r}") from None
        n = len(a["feature"])
        if any(len(a[k]) != n for k in ("threshold", "left", "right", "value")):
            raise CostModelError("tree ensemble: node arrays of different lengths")
        for k in ("left", "right", "roots"):
            if len(a[k]) and (a[k].max() >= n or a[k].min() < -1):
                raise CostModelError(f"tree ensemble: {k} points outside the node arrays")
        return cls(a["feature"].astype(np.int32), a["threshold"].astype(np.float64), a["left"].astype(np.int32),
                   a["right"].astype(np.int32), a["value"].astype(np.float64), a["roots"].astype(np.int32),
                   float(meta["offset"]), float(meta["scale"]), bool(meta["mean"]), int(meta["depth"]))
