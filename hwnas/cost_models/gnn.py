"""``gnn``: message passing over the NetworkSpec graph (PyG), then sum and mean pooling.

Why the whole NetworkSpec and not a cell DAG: the model is called with NetworkSpecs by
the search engine, whatever the space, so it must read them as they are; nodes carry
their resolution and width, which a bare cell DAG lacks; and the graph (forward edges
and their reverses, so a block sees both its inputs and its consumers) says which
branches reach the output (e.g. a NAS-Bench-201 ``none`` edge cuts a path). Batching
is done with NumPy, not per-graph collation, to keep prediction fast.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.cost_models.base import TorchCostModel, mlp_head
from hwnas.cost_models.features import Encoded, graph_batch
from hwnas.registry import register


def _module(d_in: int, hidden: int, layers: int, d_out: int = 1) -> Any:
    """The graph network; ``d_out`` > 1 gives one output per device (the transfer base)."""
    import torch
    import torch.nn as nn
    from torch_geometric.nn import GraphConv, global_add_pool, global_mean_pool

    class GraphNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("n_mu", torch.zeros(d_in))
            self.register_buffer("n_sd", torch.ones(d_in))
            self.inp = nn.Linear(d_in, hidden)
            self.fwd = nn.ModuleList(GraphConv(hidden, hidden, aggr="add") for _ in range(layers))
            self.bwd = nn.ModuleList(GraphConv(hidden, hidden, aggr="add") for _ in range(layers))
            self.head = mlp_head(2 * hidden, hidden, d_out)

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, n: int) -> torch.Tensor:
            h = torch.relu(self.inp((x - self.n_mu) / self.n_sd))
            rev = edge_index.flip(0)
            for f, b in zip(self.fwd, self.bwd):
                h = h + torch.relu(f(h, edge_index) + b(h, rev))
            pooled = torch.cat([global_add_pool(h, batch, size=n) / 16.0, global_mean_pool(h, batch, size=n)], 1)
            out = self.head(pooled)
            return out.squeeze(-1) if d_out == 1 else out

    return GraphNet()


@register("cost_model", "gnn")
class GNNModel(TorchCostModel):
    """Bidirectional GraphConv message passing on the network graph, add+mean pooling."""

    report_order = 50

    uses_edges = True

    def __init__(self, hidden: int = 48, layers: int = 3, steps: int = 1000, batch_size: int = 32,
                 lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> None:
        super().__init__(hidden=hidden, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         seed=seed)
        self.layers = layers

    def _build(self, enc: Encoded | None) -> None:
        import torch

        self.module_ = _module(self.nodes_.dim, self.hidden, self.layers)
        if enc is not None:
            mu, sd = self.node_stats(enc)
            self.module_.n_mu.copy_(torch.from_numpy(mu))
            self.module_.n_sd.copy_(torch.from_numpy(sd))

    def _inputs(self, enc: Encoded) -> Any:
        return self.nodes_.matrix

    def _take(self, inputs: Any, enc: Encoded, idx: np.ndarray) -> tuple[Any, ...]:
        g = graph_batch(enc.select(idx), inputs)
        return g.x, g.edge_index, g.batch, len(idx)
