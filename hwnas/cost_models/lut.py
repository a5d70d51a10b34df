"""The naive sum of primitive costs (look-up table): the baseline every report shows.

Why keep it as a model: it is what a hardware-aware search would use without any
fitting, so any learned model must be judged against it on the same held-out networks.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.base import CostModel, check_xy
from hwnas.cost_models.features import NodeFeatures, encode, ops_of
from hwnas.primitives import NetworkSpec
from hwnas.registry import register


@register("cost_model", "lut")
class LUTModel(CostModel):
    """Sum of the table values of a network's blocks (no fitting)."""

    report_order = 0

    needs_table = True

    def __init__(self) -> None:
        pass

    def fit(self, networks: Sequence[NetworkSpec], y: Any = None, table: Mapping[str, float] | None = None) -> "LUTModel":
        table = self._check_table(table)
        if y is not None:
            check_xy(networks, y)
        self.nodes_ = NodeFeatures(ops_of(networks), table)
        encode(self.nodes_, networks)  # a missing primitive fails at fit, not later
        self.n_train_ = len(networks)
        return self

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        self._check_fitted()
        return self.table_sum(encode(self.nodes_, networks))

    def state(self) -> dict[str, Any]:
        return {**super().state(), "n_train": self.n_train_}

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        super().restore(state, tensors)
        self.n_train_ = int(state.get("n_train", 0))
