"""The DARTS / ENAS cell space (``darts``): normal and reduction cells of a CIFAR network.

The network (Liu et al., 2019): a 3x3 conv stem with ``stem_multiplier * channels``
outputs, ``cells`` cells of which those at 1/3 and 2/3 of the depth are reduction cells
(stride 2, channels doubled), global pooling and a classifier. Every cell preprocesses
its two inputs (the outputs of the two previous cells) to ``C`` channels, builds
``nodes`` intermediate nodes, each the sum of two operations applied to earlier states,
and concatenates the intermediate nodes. All normal cells share one genotype, all
reduction cells another. ``ops`` chooses the operation list (DARTS' 8, ENAS' 5, or a
small test list) and ``nodes`` / ``cells`` / ``channels`` the size, so the ENAS variant
and a tiny test space are one config away.

As a NetworkSpec every operation is a node; an intermediate node is an ``identity`` node
summing its two operations, and the cell output is a ``concat`` node. An architecture
holds, per cell type and node, (input, op) for each of the two inputs; see
:mod:`hwnas.search.spaces.genotype` for the string forms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, MAX_RESOLUTION, Arch, Decision, SearchSpace
from hwnas.search.spaces.differentiable import CostTerm, ParamGroup, check_weights, one_hot
from hwnas.search.spaces.genotype import CELL_TYPES, Genotype, check_genotype, format_genotype, parse_genotype

#: The DARTS operations (the space's vocabulary; ``ops`` picks a subset).
OPS: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                        "dil_conv_3x3", "dil_conv_5x5")
#: Inputs per intermediate node.
INPUTS = 2


def op_primitive(op: str, c: int, r: int, stride: int) -> Primitive:
    """The primitive of DARTS operation ``op`` on ``c`` channels at ``r`` x ``r``."""
    if op == "none":
        return Primitive("none", c, c, r, r, stride=stride)
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return Primitive("pool", c, c, r, r, kernel=3, stride=stride, extras=(("mode", op[:3]),))
    if op == "skip_connect":
        return Primitive("skip_connect", c, c, r, r) if stride == 1 else \
            Primitive("factorized_reduce", c, c, r, r, stride=stride)
    kind, _, size = op.rpartition("_")
    return Primitive(kind, c, c, r, r, kernel=int(size.split("x")[0]), stride=stride)


@dataclass(frozen=True)
class CellShape:
    """Where a cell sits: its type, channels and resolutions (input s1 and output)."""

    reduction: bool
    reduction_prev: bool
    c_pp: int
    c_p: int
    c: int
    r_in: int
    r_out: int

    @property
    def kind(self) -> str:
        return "reduce" if self.reduction else "normal"

    def edge(self, j: int) -> tuple[int, int]:
        """(resolution, stride) of an operation reading state ``j``."""
        if j < INPUTS and self.reduction:
            return self.r_in, 2
        return (self.r_in if j < INPUTS else self.r_out), 1

    def preprocess(self) -> tuple[Primitive, Primitive]:
        r = self.r_in
        pre0 = Primitive("factorized_reduce", self.c_pp, self.c, 2 * r, 2 * r, stride=2) if self.reduction_prev \
            else Primitive("nor_conv_1x1", self.c_pp, self.c, r, r)
        return pre0, Primitive("nor_conv_1x1", self.c_p, self.c, r, r)


@register("search_space", "darts")
class DartsSpace(SearchSpace):
    """DARTS/ENAS cells: normal + reduction genotypes, `nodes` nodes of 2 (input, op) pairs."""

    @dataclass(frozen=True)
    class Options:
        cells: int = opt(8, min=1, max=64, help="cells in the network (reductions at 1/3 and 2/3 of the depth)")
        channels: int = opt(16, min=1, max=MAX_CHANNELS, help="channels C of the first cells (doubled at each reduction)")
        nodes: int = opt(4, min=1, max=8, help="intermediate nodes per cell")
        ops: list[str] = opt(list(OPS), min_items=1, unique=True, help=f"operations to choose from (of {', '.join(OPS)})")
        stem_multiplier: int = opt(3, min=1, max=8, help="stem outputs stem_multiplier * channels")
        resolution: int = opt(32, min=4, max=MAX_RESOLUTION, help="input height and width")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels")
        num_classes: int = opt(10, min=2, max=MAX_CLASSES, help="classifier outputs")

        def check(self) -> None:
            bad = [o for o in self.ops if o not in OPS]
            if bad:
                raise ConfigError(f"ops: unknown operation {bad[0]!r}; known: {', '.join(OPS)}")
            if len(set(self.ops)) != len(self.ops) or not [o for o in self.ops if o != "none"]:
                raise ConfigError("ops: give distinct operations, at least one of them not 'none'")
            n_red = len({self.cells // 3, 2 * self.cells // 3})
            if self.resolution % (2 ** n_red):
                raise ConfigError(f"resolution: must be divisible by {2 ** n_red} ({n_red} reduction cells), "
                                  f"got {self.resolution}")

    def __init__(self, options: "DartsSpace.Options | None" = None, **kw: object) -> None:
        self.options = options or DartsSpace.Options(**kw)  # type: ignore[arg-type]
        if options is None:
            self.options.check()
        self.ops: tuple[str, ...] = tuple(self.options.ops)
        self.shapes = self._shapes()
        #: Rows of a cell's edge matrix: (node i, input j).
        self.edge_rows: list[tuple[int, int]] = [(i, j) for i in range(self.options.nodes) for j in range(i + 2)]
        super().__init__()

    def _shapes(self) -> list[CellShape]:
        o = self.options
        reductions = {o.cells // 3, 2 * o.cells // 3}
        c_pp = c_p = o.stem_multiplier * o.channels
        c, r, red_prev, out = o.channels, o.resolution, False, []
        for i in range(o.cells):
            red = i in reductions
            if red:
                c *= 2
            out.append(CellShape(red, red_prev, c_pp, c_p, c, r, r // 2 if red else r))
            c_pp, c_p, red_prev = c_p, o.nodes * c, red
            r = r // 2 if red else r
        return out

    # -- decisions and genotypes ----------------------------------------------------------
    def build_decisions(self) -> Sequence[Decision]:
        out = []
        for t in CELL_TYPES:
            for i in range(self.options.nodes):
                for k in range(INPUTS):
                    out.append(Decision(f"{t}.n{i}.in{k}", tuple(range(i + 2))))
                    out.append(Decision(f"{t}.n{i}.op{k}", self.ops))
        return out

    def genotype(self, arch: Arch) -> Genotype:
        """Per cell type and node, the (op, input) pairs in the architecture's order."""
        arch = self.validate(arch)
        out: Genotype = {}
        per_cell = self.options.nodes * 2 * INPUTS
        for t_i, t in enumerate(CELL_TYPES):
            chunk = arch[t_i * per_cell:(t_i + 1) * per_cell]
            out[t] = [[(self.ops[chunk[n + 2 * k + 1]], chunk[n + 2 * k]) for k in range(INPUTS)]
                      for n in range(0, per_cell, 2 * INPUTS)]
        return out

    def from_genotype(self, genotype: Mapping[str, Any], where: str = "genotype") -> Arch:
        g = check_genotype(genotype, self.ops, self.options.nodes, INPUTS, where)
        return tuple(v for t in CELL_TYPES for node in g[t] for op, j in node for v in (j, self.ops.index(op)))

    def canonical(self, arch: Arch) -> Arch:
        """The two (input, op) pairs of every node in sorted order: the same cell."""
        g = self.genotype(arch)
        return self.from_genotype({t: [sorted(node, key=lambda p: (p[1], self.ops.index(p[0]))) for node in g[t]]
                                   for t in CELL_TYPES})

    def to_str(self, arch: Arch) -> str:
        return format_genotype(self.genotype(arch))

    def from_str(self, text: str) -> Arch:
        return self.from_genotype(parse_genotype(text, self.ops, self.options.nodes, INPUTS))

    def to_jsonable(self, arch: Arch) -> Any:
        """``{normal: [[[op, input], [op, input]], ...], reduce: [...]}`` (one entry per node)."""
        g = self.genotype(arch)
        return {t: [[[op, j] for op, j in node] for node in g[t]] for t in CELL_TYPES}

    def from_jsonable(self, obj: Any) -> Arch:
        if isinstance(obj, (list, tuple)):
            return self.validate(obj)
        if isinstance(obj, str):
            return self.from_str(obj)
        return self.from_genotype(obj)

    # -- hardware half -------------------------------------------------------------------
    def stem_primitive(self) -> Primitive:
        o = self.options
        return Primitive("conv", o.in_channels, o.stem_multiplier * o.channels, o.resolution, o.resolution, kernel=3)

    def head_primitives(self) -> list[Primitive]:
        last = self.shapes[-1]
        c = self.options.nodes * last.c
        return [Primitive("pool", c, c, last.r_out, last.r_out, kernel=last.r_out, extras=(("mode", "global"),)),
                Primitive("fc", c, self.options.num_classes, 1, 1)]

    def _cell_fixed(self, shape: CellShape) -> list[Primitive]:
        n = self.options.nodes
        return [*shape.preprocess(), Primitive("identity", shape.c, shape.c, shape.r_out, shape.r_out),
                Primitive("concat", n * shape.c, n * shape.c, shape.r_out, shape.r_out)]

    def to_network(self, arch: Arch) -> NetworkSpec:
        """The network of ``arch`` (its canonical form, so equal cells give equal networks)."""
        arch = self.canonical(arch)
        g = self.genotype(arch)
        nodes: list[Primitive] = [self.stem_primitive()]
        edges: list[tuple[int, int]] = []
        drop: list[int] = []
        prev_prev = prev = 0
        aux = 0

        def add(p: Primitive, preds: Sequence[int]) -> int:
            nodes.append(p)
            edges.extend((q, len(nodes) - 1) for q in preds)
            return len(nodes) - 1

        for ci, shape in enumerate(self.shapes):
            pre0, pre1 = shape.preprocess()
            states = [add(pre0, [prev_prev]), add(pre1, [prev])]
            for node in g[shape.kind]:
                ops = []
                for op, j in node:
                    r, stride = shape.edge(j)
                    ops.append(add(op_primitive(op, shape.c, r, stride), [states[j]]))
                    if not (op == "skip_connect" and stride == 1):
                        drop.append(ops[-1])  # DARTS drops every op path but identities
                states.append(add(Primitive("identity", shape.c, shape.c, shape.r_out, shape.r_out), ops))
            n = self.options.nodes * shape.c
            prev_prev, prev = prev, add(Primitive("concat", n, n, shape.r_out, shape.r_out), states[2:])
            if ci == 2 * self.options.cells // 3:
                aux = prev
        head = self.head_primitives()
        add(head[1], [add(head[0], [prev])])
        o = self.options
        return NetworkSpec((o.in_channels, o.resolution, o.resolution), tuple(nodes), tuple(edges),
                           (("arch", self.to_str(arch)), ("aux_node", aux), ("drop_path_nodes", tuple(drop)),
                            ("space", "darts")))

    def primitives(self) -> list[Primitive]:
        prims = [self.stem_primitive(), *self.head_primitives()]
        for shape in self.shapes:
            prims += self._cell_fixed(shape)
            for j in range(self.options.nodes + 1):
                r, stride = shape.edge(j)
                prims += [op_primitive(op, shape.c, r, stride) for op in self.ops]
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]

    # -- differentiable search -----------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        """One edge x op matrix per cell type (DARTS' alpha_normal / alpha_reduce)."""
        return [ParamGroup(t, len(self.edge_rows), self.ops) for t in CELL_TYPES]

    def edge_param_groups(self) -> list[ParamGroup]:
        """Per node, weights of its inputs (PC-DARTS' edge normalisation, beta)."""
        n = self.options.nodes
        mask = tuple(tuple(j < i + 2 for j in range(n + 1)) for i in range(n))
        return [ParamGroup(f"{t}.edges", n, tuple(f"in{j}" for j in range(n + 1)), mask, kind="edge")
                for t in CELL_TYPES]

    def derive(self, weights: Mapping[str, np.ndarray]) -> Arch:
        """DARTS derivation: per node the two inputs whose strongest non-``none`` op weighs
        most (times the input's edge weight when edge normalisation is on), each with
        that op."""
        w = check_weights(self.param_groups(), weights)
        real = np.array([op != "none" for op in self.ops])
        genotype: dict[str, Any] = {}
        for t in CELL_TYPES:
            beta = weights.get(f"{t}.edges")
            rows = np.where(real, w[t], -np.inf)
            cell, row = [], 0
            for i in range(self.options.nodes):
                block = rows[row:row + i + 2]
                strength = block.max(axis=1) * (np.asarray(beta)[i, :i + 2] if beta is not None else 1.0)
                picks = sorted(np.argsort(-strength, kind="stable")[:INPUTS].tolist())
                cell.append([(self.ops[int(block[j].argmax())], int(j)) for j in picks])
                row += i + 2
            genotype[t] = cell
        return self.from_genotype(genotype)

    def arch_weights(self, arch: Arch) -> dict[str, np.ndarray]:
        """One-hot edge x op weights; rows of unused inputs are all zero. ``derive`` gives
        the architecture back when every node reads two distinct inputs through ops other
        than ``none`` (every DARTS genotype)."""
        g = self.genotype(arch)
        out = one_hot(self.param_groups(), {t: [0] * len(self.edge_rows) for t in CELL_TYPES})
        for t in CELL_TYPES:
            out[t][:] = 0.0
            for i, node in enumerate(g[t]):
                for op, j in node:
                    out[t][self.edge_rows.index((i, j)), self.ops.index(op)] = 1.0
        return out

    def cost_terms(self) -> list[CostTerm]:
        """Every op of every edge of every cell, scaled by 2 / (inputs of its node): a node
        keeps two of its inputs, so a uniform distribution costs as much as a derived cell."""
        out = [CostTerm(p) for p in (self.stem_primitive(), *self.head_primitives())]
        for shape in self.shapes:
            fixed = self._cell_fixed(shape)  # pre0, pre1, one node's sum, concat
            out += [CostTerm(p) for p in fixed] + [CostTerm(fixed[2])] * (self.options.nodes - 1)
            for row, (i, j) in enumerate(self.edge_rows):
                r, stride = shape.edge(j)
                out += [CostTerm(op_primitive(op, shape.c, r, stride), shape.kind, row, c, INPUTS / (i + 2))
                        for c, op in enumerate(self.ops)]
        return out
