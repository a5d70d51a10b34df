"""``lstm``: a recurrent model over the blocks of a network in node order.

Why an LSTM: latency is close to a sum over blocks but with context effects (a block
after a wide one, cache reuse along a stage); a recurrent pass sees each block in its
context and handles any network length, unlike the MLP's fixed padding. The readout
sums the per-step outputs (the additive part) and adds the final state (the context).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.cost_models.base import TorchCostModel, mlp_head
from hwnas.cost_models.features import Encoded, pad
from hwnas.registry import register


def _module(d_in: int, hidden: int) -> Any:
    import torch
    import torch.nn as nn

    class SeqNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("n_mu", torch.zeros(d_in))
            self.register_buffer("n_sd", torch.ones(d_in))
            self.lstm = nn.LSTM(d_in, hidden, batch_first=True)
            self.head = mlp_head(2 * hidden, hidden)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            steps = torch.arange(x.shape[1])
            mask = (steps[None, :] < lengths[:, None]).unsqueeze(-1).to(x.dtype)
            out, _ = self.lstm(((x - self.n_mu) / self.n_sd) * mask)
            total = (out * mask).sum(1) / 8.0
            last = out[torch.arange(x.shape[0]), lengths - 1]
            return self.head(torch.cat([total, last], dim=1)).squeeze(-1)

    return SeqNet()


@register("cost_model", "lstm")
class LSTMModel(TorchCostModel):
    """LSTM over per-block features (op, shapes, log table latency), sum + last readout."""

    report_order = 40

    def __init__(self, hidden: int = 64, steps: int = 1200, batch_size: int = 64, lr: float = 3e-3,
                 weight_decay: float = 1e-4, seed: int = 0) -> None:
        super().__init__(hidden=hidden, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         seed=seed)

    def _build(self, enc: Encoded | None) -> None:
        import torch

        self.module_ = _module(self.nodes_.dim, self.hidden)
        if enc is not None:
            mu, sd = self.node_stats(enc)
            self.module_.n_mu.copy_(torch.from_numpy(mu))
            self.module_.n_sd.copy_(torch.from_numpy(sd))

    def _inputs(self, enc: Encoded) -> Any:
        import torch

        x = pad(enc, self.nodes_.matrix, int(enc.lengths.max()))
        return torch.from_numpy(x), torch.from_numpy(enc.lengths)

    def _take(self, inputs: Any, enc: Encoded, idx: np.ndarray) -> tuple[Any, ...]:
        import torch

        x, lengths = inputs
        t = torch.from_numpy(idx)
        lens = lengths[t]
        return x[t, :int(lens.max())], lens
