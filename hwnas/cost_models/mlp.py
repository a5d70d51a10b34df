"""``mlp``: a multilayer perceptron on a fixed-length encoding of the whole network.

Why this encoding: the per-position block rows (padded to the longest training
network) keep *where* each block sits, which a sum throws away, while op counts, the
log table sum and each op's share of it give the network its overall size directly. A
network longer than any seen in training (a deeper candidate in a search) keeps its
aggregates and drops only the positions past ``max_len`` (logged once), rather than
failing or feeding untrained input weights. Columns are standardised
with training statistics stored as buffers, so the saved state_dict is all a loaded
model needs. The MLP is the fastest learned model to predict with (one matmul chain).
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from hwnas.cost_models.base import TorchCostModel, mlp_head
from hwnas.cost_models.features import Encoded, pad
from hwnas.registry import register

log = logging.getLogger(__name__)


def _module(d_in: int, hidden: int) -> Any:
    import torch
    import torch.nn as nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("x_mu", torch.zeros(d_in))
            self.register_buffer("x_sd", torch.ones(d_in))
            self.net = mlp_head(d_in, hidden)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net((x - self.x_mu) / self.x_sd).squeeze(-1)

    return MLP()


@register("cost_model", "mlp")
class MLPModel(TorchCostModel):
    """MLP on per-position block features + op counts (+ log table sum), log target."""

    report_order = 30

    def __init__(self, hidden: int = 128, steps: int = 1500, batch_size: int = 64, lr: float = 2e-3,
                 weight_decay: float = 1e-3, seed: int = 0, max_len: int | None = None,
                 full_rows: bool = False) -> None:
        super().__init__(hidden=hidden, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         seed=seed)
        self.max_len = max_len
        self.full_rows = full_rows

    def features(self, enc: Encoded) -> np.ndarray:
        """(N, d_in) raw inputs: [log n, op counts, (log sum, op shares of it), per-position
        block features]. With a table, a position holds only the block's log table value
        unless ``full_rows``: the table already says what the block costs, and a few
        hundred networks cannot support thousands of inputs without overfitting."""
        nf = self.nodes_
        rows = nf.matrix
        n_onehot = len(nf.ops) + 1
        counts = np.add.reduceat(rows[enc.ids, :n_onehot], enc.offsets[:-1], axis=0) if len(enc.ids) \
            else np.zeros((enc.n, n_onehot), np.float32)
        agg: list[np.ndarray] = [np.log(enc.lengths.astype(np.float64))[:, None], counts]
        if nf.has_table and len(enc.ids):
            total = np.maximum(self.table_sum(enc), 1e-9)
            by_op = np.add.reduceat(rows[enc.ids, :n_onehot] * nf.values[enc.ids, None], enc.offsets[:-1], axis=0)
            agg += [np.log(total)[:, None], by_op / total[:, None]]
        if enc.n and int(enc.lengths.max()) > self.max_len_ and not self._warned:
            log.warning("mlp: networks longer than the %d blocks seen in training; positions beyond are dropped",
                        self.max_len_)
            self._warned = True
        per_pos = rows[:, -1:] if (nf.has_table and not self.full_rows) else rows
        flat = pad(enc, per_pos, self.max_len_, truncate=True).reshape(enc.n, -1)
        return np.concatenate([*(a.astype(np.float32) for a in agg), flat], axis=1)

    _warned = False

    def _build(self, enc: Encoded | None) -> None:
        import torch

        if enc is not None:
            self.max_len_ = int(self.max_len or enc.lengths.max())
            x = self.features(enc)
            self.d_in_ = x.shape[1]
        self.module_ = _module(self.d_in_, self.hidden)
        if enc is not None:
            self.module_.x_mu.copy_(torch.from_numpy(x.mean(0)))
            self.module_.x_sd.copy_(torch.from_numpy(np.maximum(x.std(0), 1e-3)))

    def _inputs(self, enc: Encoded) -> Any:
        import torch

        return torch.from_numpy(self.features(enc))

    def _take(self, inputs: Any, enc: Encoded, idx: np.ndarray) -> tuple[Any, ...]:
        return (inputs[idx[0]:idx[-1] + 1] if _contiguous(idx) else inputs[idx],)

    def _extra_state(self) -> dict[str, Any]:
        return {"max_len": self.max_len_, "d_in": self.d_in_}

    def _restore_extra(self, state: Mapping[str, Any]) -> None:
        self.max_len_, self.d_in_ = int(state["max_len"]), int(state["d_in"])


def _contiguous(idx: np.ndarray) -> bool:
    return len(idx) > 0 and int(idx[-1]) - int(idx[0]) + 1 == len(idx) and bool(np.all(np.diff(idx) == 1))
