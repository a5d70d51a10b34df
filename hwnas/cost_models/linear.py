"""Linear corrections of the naive sum: ``linear1`` (y ~ a*sum + b) and ``linear2``
(y ~ a*sum + b*blocks + c).

Why relative weighting: an ordinary least-squares fit lets the largest networks decide
the line, while the ±10% goal weighs every network the same. Weighting each row by
1/y makes the squared residuals relative errors, at the cost of nothing.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.base import CostModel, check_xy
from hwnas.cost_models.features import NodeFeatures, encode, ops_of
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec
from hwnas.registry import register


class _LinearOnSum(CostModel):
    """Shared: least squares on [sum, (count), 1], rows weighted by 1/y when ``relative``."""

    needs_table = True
    use_count = False

    def __init__(self, relative: bool = True, ridge: float = 1e-8) -> None:
        self.relative = relative
        self.ridge = ridge

    def _design(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        enc = encode(self.nodes_, networks)
        cols = [self.table_sum(enc)]
        if self.use_count:
            cols.append(enc.lengths.astype(np.float64))
        cols.append(np.ones(enc.n))
        return np.column_stack(cols)

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None) -> "_LinearOnSum":
        y = check_xy(networks, y)
        self.nodes_ = NodeFeatures(ops_of(networks), self._check_table(table))
        x = self._design(networks)
        w = 1.0 / y if self.relative else np.ones_like(y)
        xw, yw = x * w[:, None], y * w
        # Column scaling keeps the normal equations well conditioned (sums ~1e-3..1e3 ms).
        scale = np.maximum(np.abs(xw).max(0), 1e-12)
        a = xw / scale
        coef = np.linalg.solve(a.T @ a + self.ridge * np.eye(a.shape[1]), a.T @ yw) / scale
        if not np.all(np.isfinite(coef)):
            raise CostModelError(f"{self.registry_name}: the fit is singular (are all sums equal?)")
        self.coef_ = coef
        self.n_train_ = len(y)
        return self

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        self._check_fitted()
        return self._design(networks) @ self.coef_

    def state(self) -> dict[str, Any]:
        return {**super().state(), "coef": [float(c) for c in self.coef_], "n_train": self.n_train_}

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        super().restore(state, tensors)
        self.coef_ = np.asarray(state["coef"], dtype=np.float64)
        self.n_train_ = int(state.get("n_train", 0))


@register("cost_model", "linear1")
class Linear1Model(_LinearOnSum):
    """y ~ a * (sum of block costs) + b, relative least squares."""

    report_order = 10


@register("cost_model", "linear2")
class Linear2Model(_LinearOnSum):
    """y ~ a * (sum of block costs) + b * (number of blocks) + c, relative least squares."""

    report_order = 20

    use_count = True
