"""NAS-Bench-201 cell space in its CIFAR skeleton (C=16, N=5).

The cell is a DAG over 4 nodes; each of the 6 edges i->j (i<j) carries one of five
ops. As a NetworkSpec, every edge op is a node; an edge i->j reads the sum of the ops
that enter node i (the previous cell's output for i=0), which is exactly the
"sum at merge nodes" rule of NetworkSpec, so no extra merge nodes are needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hwnas.config import opt
from hwnas.errors import ValidationError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import (
    MAX_CHANNELS,
    MAX_CLASSES,
    MAX_RESOLUTION,
    Arch,
    Decision,
    SearchSpace,
    ascii_int,
    ascii_text,
)

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges (from, to) in the order of the NAS-Bench-201 string.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_KERNEL = {"none": 1, "skip_connect": 1, "nor_conv_1x1": 1, "nor_conv_3x3": 3, "avg_pool_3x3": 3}


@register("search_space", "nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: 6 edges x 5 ops (15,625 cells) in the C=16, N=5 CIFAR skeleton."""

    @dataclass(frozen=True)
    class Options:
        channels: int = opt(16, min=1, max=MAX_CHANNELS, help="channels of the first stage (C)")
        cells_per_stage: int = opt(5, min=1, max=32, help="cells per stage (N)")
        resolution: int = opt(32, min=4, max=MAX_RESOLUTION, help="input height and width")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels")
        num_classes: int = opt(10, min=2, max=MAX_CLASSES, help="classifier outputs")

    def __init__(self, options: "NB201Space.Options | None" = None, **kw: object) -> None:
        self.options = options or NB201Space.Options(**kw)  # type: ignore[arg-type]
        self._prims: dict[tuple[str, int, int], Primitive] = {}
        super().__init__()

    def build_decisions(self) -> Sequence[Decision]:
        return [Decision(f"edge{i}~{j}", OPS) for i, j in EDGES]

    def to_str(self, arch: Arch) -> str:
        ops = [OPS[a] for a in self.validate(arch)]
        nodes = [[f"{ops[e]}~{EDGES[e][0]}" for e in range(len(EDGES)) if EDGES[e][1] == j] for j in (1, 2, 3)]
        return "+".join("|" + "|".join(n) + "|" for n in nodes)

    def from_str(self, text: str) -> Arch:
        text = ascii_text("nb201", text)
        try:
            groups = [g.strip("|").split("|") for g in text.strip().split("+")]
            if [len(g) for g in groups] != [1, 2, 3]:
                raise ValueError
            out = []
            for j, g in enumerate(groups, start=1):
                for i, item in enumerate(g):
                    op, src = item.split("~")
                    if ascii_int(src) != i:
                        raise ValueError
                    out.append(OPS.index(op))
        except ValueError:
            raise ValidationError(
                f"nb201: cannot parse {text!r}; expected e.g. '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'"
            ) from None
        return tuple(out)

    def _stages(self) -> list[tuple[int, int]]:
        o = self.options
        r = o.resolution
        return [(o.channels, r), (2 * o.channels, (r + 1) // 2), (4 * o.channels, (r + 3) // 4)]

    def _stem_prim(self) -> Primitive:
        o = self.options
        return Primitive("conv", o.in_channels, o.channels, o.resolution, o.resolution, kernel=3)

    def _edge_prim(self, op: str, c: int, r: int) -> Primitive:
        """The primitive of one edge op (memoised: predictors build thousands of graphs per step)."""
        p = self._prims.get((op, c, r))
        if p is None:
            p = self._prims[(op, c, r)] = Primitive(op, c, c, r, r, kernel=_KERNEL[op])
        return p

    def to_network(self, arch: Arch) -> NetworkSpec:
        o = self.options
        ops = [OPS[a] for a in self.validate(arch)]
        nodes: list[Primitive] = [self._stem_prim()]
        edges: list[tuple[int, int]] = []
        prev_out = [0]  # node indices whose sum is the current feature map
        stages = self._stages()
        for s, (c, r) in enumerate(stages):
            if s > 0:
                c_prev, r_prev = stages[s - 1]
                idx = len(nodes)
                nodes.append(Primitive("nb201_resblock", c_prev, c, r_prev, r_prev, kernel=3, stride=2))
                edges += [(p, idx) for p in prev_out]
                prev_out = [idx]
            for _ in range(o.cells_per_stage):
                into: dict[int, list[int]] = {0: prev_out, 1: [], 2: [], 3: []}
                for e, (i, j) in enumerate(EDGES):
                    idx = len(nodes)
                    nodes.append(self._edge_prim(ops[e], c, r))
                    edges += [(p, idx) for p in into[i]]
                    into[j].append(idx)
                prev_out = into[3]
        c, r = stages[-1]
        idx = len(nodes)
        nodes.append(Primitive("pool", c, c, r, r, kernel=r, act="relu", extras=(("mode", "global"),)))
        edges += [(p, idx) for p in prev_out]
        nodes.append(Primitive("fc", c, o.num_classes, 1, 1))
        edges.append((idx, idx + 1))
        return NetworkSpec((o.in_channels, o.resolution, o.resolution), tuple(nodes), tuple(edges),
                           (("arch", self.to_str(arch)), ("space", "nb201")))

    def cell_graph(self, arch: Arch) -> NetworkSpec:
        """One cell of the first stage: the stem (the cell's input), the six edge ops, and an
        identity node summing the edges into node 3 (the cell's output)."""
        o = self.options
        ops = [OPS[a] for a in self.validate(arch)]
        c, r = self._stages()[0]
        nodes = [self._stem_prim()]
        into: dict[int, list[int]] = {0: [0], 1: [], 2: [], 3: []}
        edges: list[tuple[int, int]] = []
        for e, (i, j) in enumerate(EDGES):
            nodes.append(self._edge_prim(ops[e], c, r))
            edges += [(p, len(nodes) - 1) for p in into[i]]
            into[j].append(len(nodes) - 1)
        nodes.append(self._edge_prim("skip_connect", c, r))
        edges += [(p, len(nodes) - 1) for p in into[3]]
        return NetworkSpec((o.in_channels, r, r), tuple(nodes), tuple(edges), (("arch", self.to_str(arch)),
                                                                                 ("space", "nb201"), ("cell", True)))

    def primitives(self) -> list[Primitive]:
        o = self.options
        stages = self._stages()
        prims = [self._stem_prim()]
        for s, (c, r) in enumerate(stages):
            if s > 0:
                c_prev, r_prev = stages[s - 1]
                prims.append(Primitive("nb201_resblock", c_prev, c, r_prev, r_prev, kernel=3, stride=2))
            prims += [self._edge_prim(op, c, r) for op in OPS]
        c, r = stages[-1]
        prims += [Primitive("pool", c, c, r, r, kernel=r, act="relu", extras=(("mode", "global"),)),
                  Primitive("fc", c, o.num_classes, 1, 1)]
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]
