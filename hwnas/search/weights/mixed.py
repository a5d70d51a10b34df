"""Shared-weight modules with mixed operations: DARTS cells and block-wise chains.

One module holds every candidate operation of every edge (cell spaces) or layer
(chain spaces) and runs a *plan*:

* :class:`DiscretePlan` - one architecture: each node / layer runs only its chosen ops
  (ENAS-style weight sharing, and what a non-differentiable controller gets);
* :class:`MixedPlan` - architecture weights (:class:`~hwnas.search.archweights.ArchWeights`):
  each edge is the weighted sum of its ops (DARTS, SNAS, FBNet), or, for hard one-hot
  weights, only the sampled op times its weight (GDAS: one op runs, the gradient still
  reaches every logit through the straight-through weight).

Partial channel connections (PC-DARTS, Xu et al., 2020): an edge mixes its ops on the
first ``1/K`` of the channels, passes the rest through (max-pooled on a reduction edge)
and shuffles the channels, which cuts the memory of a mixed edge by about ``K``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from hwnas.nn.builders import build_primitive
from hwnas.search.spaces.darts import CellShape, DartsSpace
from hwnas.search.spaces.differentiable import MixedLayer


@dataclass
class DiscretePlan:
    """Cell spaces: per cell type, per node, (op index, input) pairs; chain spaces: per
    group, the chosen choice of every row."""

    choices: dict[str, Any]


@dataclass
class MixedPlan:
    """Architecture weights per group (rows x choices) and, for hard paths, the indices."""

    weights: dict[str, torch.Tensor]
    index: dict[str, list[int]] | None = None


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def mix(ops: Sequence[nn.Module], x: torch.Tensor, w: torch.Tensor | None, index: int | None) -> torch.Tensor:
    """One op (``w`` None: discrete; else hard path ``w[index] * op``) or the weighted sum."""
    if index is not None:
        y = ops[index](x)
        return y if w is None else w[index] * y
    assert w is not None
    out = None
    for wi, op in zip(w, ops):
        y = wi * op(x)
        out = y if out is None else out + y
    assert out is not None
    return out


class MixedEdge(nn.Module):
    """Every candidate op of one cell edge, on ``1/partial`` of the channels."""

    def __init__(self, ops: Sequence[nn.Module], c: int, stride: int, partial: int = 1) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.c_mixed = c // partial
        self.partial = partial
        self.bypass = nn.MaxPool2d(2, 2) if partial > 1 and stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None, index: int | None = None) -> torch.Tensor:
        if self.partial == 1:
            return mix(self.ops, x, w, index)
        y = mix(self.ops, x[:, :self.c_mixed], w, index)
        return channel_shuffle(torch.cat([y, self.bypass(x[:, self.c_mixed:])], dim=1), self.partial)


class SuperCell(nn.Module):
    """One cell: input preprocessing and a mixed edge per (node, input)."""

    def __init__(self, pre: tuple[nn.Module, nn.Module], edges: Sequence[MixedEdge],
                 rows: Sequence[tuple[int, int]], nodes: int) -> None:
        super().__init__()
        self.pre0, self.pre1 = pre
        self.edges = nn.ModuleList(edges)
        self.row = {edge: r for r, edge in enumerate(rows)}
        self.nodes = nodes

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, plan: DiscretePlan | MixedPlan, kind: str) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        if isinstance(plan, DiscretePlan):
            for i, node in enumerate(plan.choices[kind]):
                s = None
                for op, j in node:
                    y = self.edges[self.row[(i, j)]](states[j], None, op)
                    s = y if s is None else s + y
                states.append(s)
            return torch.cat(states[2:], dim=1)
        w = plan.weights[kind]
        index = plan.index.get(kind) if plan.index else None
        beta = plan.weights.get(f"{kind}.edges")
        for i in range(self.nodes):
            s = None
            for j in range(i + 2):
                r = self.row[(i, j)]
                y = self.edges[r](states[j], w[r], None if index is None else index[r])
                if beta is not None:
                    y = y * beta[i, j]
                s = y if s is None else s + y
            states.append(s)
        return torch.cat(states[2:], dim=1)


OpsMaker = Callable[[CellShape, int], list[nn.Module]]
PreMaker = Callable[[CellShape], tuple[nn.Module, nn.Module]]


class DartsSupernetModule(nn.Module):
    """Stem, one :class:`SuperCell` per cell of the space, pooling and classifier."""

    def __init__(self, space: DartsSpace, make_pre: PreMaker, make_ops: OpsMaker, partial: int = 1) -> None:
        super().__init__()
        self.stem = build_primitive(space.stem_primitive()).train()
        self.cells = nn.ModuleList()
        for shape in space.shapes:
            edges = [MixedEdge(make_ops(shape, j), shape.c, shape.edge(j)[1], partial) for _, j in space.edge_rows]
            self.cells.append(SuperCell(make_pre(shape), edges, space.edge_rows, space.options.nodes))
        pool, fc = space.head_primitives()
        self.pool, self.fc = build_primitive(pool).train(), build_primitive(fc).train()
        self.kinds = [shape.kind for shape in space.shapes]

    def forward(self, x: torch.Tensor, plan: DiscretePlan | MixedPlan) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for kind, cell in zip(self.kinds, self.cells):
            s0, s1 = s1, cell(s0, s1, plan, kind)
        return self.fc(self.pool(s1))


def darts_plan(space: DartsSpace, arch: Any) -> DiscretePlan:
    """The discrete plan of an architecture (its canonical form, as in ``to_network``)."""
    g = space.genotype(space.canonical(arch))
    return DiscretePlan({t: [[(space.ops.index(op), j) for op, j in node] for node in cells]
                         for t, cells in g.items()})


class MixedChainModule(nn.Module):
    """A chain of fixed primitives and mixed layers (FBNet's supernet), every candidate
    built by the profilers' builders from the space's own primitives."""

    def __init__(self, items: Sequence[Any]) -> None:
        super().__init__()
        self.items = list(items)
        self.layers = nn.ModuleList()
        for it in self.items:
            if isinstance(it, MixedLayer):
                self.layers.append(nn.ModuleList(nn.Identity() if p is None else build_primitive(p).train()
                                                 for p in it.candidates))
            else:
                self.layers.append(build_primitive(it).train())

    def forward(self, x: torch.Tensor, plan: DiscretePlan | MixedPlan) -> torch.Tensor:
        for it, mod in zip(self.items, self.layers):
            x = run_item(it, mod, x, plan)
        return x


def run_item(it: Any, mod: nn.Module, x: torch.Tensor, plan: DiscretePlan | MixedPlan) -> torch.Tensor:
    """One layer of a chain under a plan: a fixed layer as is, a mixed one's chosen op
    (discrete plan) or its weighted mixture (mixed plan). Also used by detection's feature taps."""
    if not isinstance(it, MixedLayer):
        return mod(x)
    if isinstance(plan, DiscretePlan):
        return mod[plan.choices[it.group][it.row]](x)
    index = plan.index[it.group][it.row] if plan.index else None
    return mix(mod, x, plan.weights[it.group][it.row], index)
