"""GATES-style architecture encoder: gated information flow over a space's graph (PyG).

Why this encoder (Ning et al., "A Generic Graph-based Neural Architecture Encoding
Scheme for Predictor-based NAS", ECCV 2020): an architecture is the way information
flows from input to output, and each op decides how much of it passes. Every node of
the space's :meth:`~hwnas.search.spaces.base.SearchSpace.cell_graph` (a NetworkSpec,
so any space works: NAS-Bench-201 cells, MobileNet / FBNet chains, DARTS cells) gets an
embedding and a sigmoid *gate* from its primitive's features (op one-hot, widths,
resolution, kernel, stride, expansion: the cost models' node rows); a node's state is
its gate times (its embedding plus a transform of the sum of its predecessors'
states), iterated ``layers`` times with PyTorch Geometric's message passing. A
``none`` op learns a closed gate, so a cell whose output is cut from its input reads
as such. The readout is the output node's state and the mean of all states (the
second sees every block of a long chain even when the flow is truncated).

Graph encodings are memoised per architecture (building a NetworkSpec costs far more
than scoring it), so ranking a pool of thousands of candidates per step stays cheap.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator, Sequence

import numpy as np

from hwnas.cost_models.features import NodeFeatures
from hwnas.search.spaces.base import Arch, SearchSpace


class GraphCache:
    """Architecture -> (node-row ids, edges) of its cell graph, memoised (bounded LRU)."""

    def __init__(self, space: SearchSpace, max_items: int = 200_000) -> None:
        self.space = space
        probe = space.cell_graph(space.sample(np.random.default_rng(0)))
        ops = sorted({p.op for p in space.primitives()} | {p.op for p in probe.nodes})
        self.nodes = NodeFeatures(ops)
        ids = [self.nodes.index(p) for p in [*space.primitives(), *probe.nodes]]
        rows = self.nodes.matrix[ids]
        self.mu = rows.mean(0)
        self.sd = np.where(rows.std(0) > 1e-6, rows.std(0), 1.0)
        self.max_items = max_items
        self._cache: OrderedDict[Arch, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def graph(self, arch: Arch) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(arch)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        net = self.space.cell_graph(key)
        ids = np.fromiter((self.nodes.index(p) for p in net.nodes), dtype=np.int64, count=len(net.nodes))
        edges = np.asarray(net.edges, dtype=np.int64).reshape(-1, 2)
        self._cache[key] = (ids, edges)
        if len(self._cache) > self.max_items:
            self._cache.popitem(last=False)
        return ids, edges

    def batch(self, archs: Sequence[Arch]) -> tuple[Any, ...]:
        """(x, edge_index, batch, last-node index, n) tensors for a list of architectures."""
        import torch

        graphs = [self.graph(a) for a in archs]
        lens = np.fromiter((len(g[0]) for g in graphs), dtype=np.int64, count=len(graphs))
        offsets = np.concatenate([[0], np.cumsum(lens)])
        ids = np.concatenate([g[0] for g in graphs])
        edges = np.concatenate([g[1] + o for g, o in zip(graphs, offsets[:-1])])
        x = (self.nodes.matrix[ids] - self.mu) / self.sd
        return (torch.from_numpy(x.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(edges.T)),
                torch.from_numpy(np.repeat(np.arange(len(graphs)), lens)), torch.from_numpy(offsets[1:] - 1),
                len(graphs))

    @property
    def dim(self) -> int:
        return self.nodes.dim


@lru_cache(maxsize=1)
def _net_class() -> type:
    """The scoring network's class, defined once (PyG generates code per MessagePassing class)."""
    import torch
    from torch import nn
    from torch_geometric.nn import MessagePassing, global_mean_pool

    class Flow(MessagePassing):
        """Sum of the predecessors' states (the DAG's data flow)."""

        def __init__(self) -> None:
            super().__init__(aggr="add")

        def forward(self, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            return self.propagate(edge_index, x=h)

    class GatesNet(nn.Module):
        def __init__(self, d_in: int, hidden: int, layers: int) -> None:
            super().__init__()
            self.embed = nn.Linear(d_in, hidden)
            self.gate = nn.Linear(d_in, hidden)
            self.lins = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
            self.flow = Flow()
            self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, last: torch.Tensor,
                    n: int) -> torch.Tensor:
            e = self.embed(x)
            g = torch.sigmoid(self.gate(x))
            h = g * torch.tanh(e)
            for lin in self.lins:
                h = g * torch.tanh(e + lin(self.flow(h, edge_index)))
            out = torch.cat([h[last], global_mean_pool(h, batch, size=n)], 1)
            return self.head(out).squeeze(-1)

    return GatesNet


def gates_net(d_in: int, hidden: int, layers: int) -> Any:
    """The scoring network: gated flow (``layers`` rounds) -> readout -> MLP -> one score."""
    return _net_class()(d_in, hidden, layers)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads (0: leave torch's setting). The ranker's ops are tiny:
    on a shared machine extra threads only wait on each other (a 10x slowdown measured)."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(old)


def ranking_loss(scores: Any, y: Any, kind: str, margin: float) -> Any:
    """Pairwise ranking loss over every pair with different targets (i better than j)."""
    import torch
    import torch.nn.functional as F

    better = (y[:, None] > y[None, :]).float()
    d = scores[:, None] - scores[None, :]
    per_pair = F.relu(margin - d) if kind == "hinge" else F.softplus(-d)
    return (per_pair * better).sum() / torch.clamp(better.sum(), min=1.0)


def fit_ranker(model: Any, optimizer: Any, inputs: tuple[Any, ...], y: np.ndarray, iters: int, kind: str,
               margin: float) -> float:
    """``iters`` full-batch Adam steps of the pairwise loss; returns the last loss."""
    import torch

    target = torch.as_tensor(np.asarray(y, dtype=np.float64))
    model.train()
    loss_value = float("nan")
    for _ in range(iters):
        optimizer.zero_grad(set_to_none=True)
        loss = ranking_loss(model(*inputs), target, kind, margin)
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())
    model.eval()
    return loss_value


def predict(model: Any, inputs: tuple[Any, ...]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(*inputs).double().numpy()
