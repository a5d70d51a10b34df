"""Cost model ``example-scaled-sum``: the table sum times one learned factor."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.base import CostModel, check_xy
from hwnas.cost_models.features import NodeFeatures, encode, ops_of
from hwnas.primitives import NetworkSpec
from hwnas.registry import register


@register("cost_model", "example-scaled-sum")
class ScaledSumModel(CostModel):
    """y ~ factor * (sum of block costs); the factor is the geometric mean ratio."""

    needs_table = True
    report_order = 50
    in_all = False

    def __init__(self, shrink: float = 0.0) -> None:
        self.shrink = shrink

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None) -> "ScaledSumModel":
        y = check_xy(networks, y)
        self.nodes_ = NodeFeatures(ops_of(networks), self._check_table(table))
        sums = np.maximum(self.table_sum(encode(self.nodes_, networks)), 1e-12)
        self.log_factor_ = float((1.0 - self.shrink) * np.mean(np.log(y) - np.log(sums)))
        self.n_train_ = len(y)
        return self

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        self._check_fitted()
        return np.exp(self.log_factor_) * self.table_sum(encode(self.nodes_, networks))

    def state(self) -> dict[str, Any]:
        return {**super().state(), "log_factor": self.log_factor_, "n_train": self.n_train_}

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        super().restore(state, tensors)
        self.log_factor_, self.n_train_ = float(state["log_factor"]), int(state["n_train"])
