"""Dense-cell CNN space (``dense_cell``): DenseNet-style cells whose nodes read every
earlier node, with one searched operation per node.

The network (after DenseNet-BC for CIFAR, Huang et al., 2017): a 3x3 conv stem, ``cells``
dense cells separated by transitions (BN-ReLU, 1x1 conv compressing the channels by
``compression``, 2x2 average pool), global pooling (with ReLU) and a classifier. In a
cell of ``nodes`` nodes, node ``i`` applies its operation to the concatenation of the
cell input and nodes ``0..i-1`` and contributes ``growth`` channels; the cell output
concatenates the input and every node. Since concatenation keeps every earlier tensor
intact, each node is one ``dense_layer`` primitive (its input followed by its new
channels), and the network is a chain of them: a node's connections to all earlier
nodes are the channels it reads, and a profiled ``dense_layer`` is exactly the block the
network runs. :meth:`DenseCellSpace.cell_graph` draws the explicit all-to-all DAG.

Every node chooses one of ``ops`` (pre-activation BN-ReLU-Conv 1x1 / 3x3 / 5x5, a
separable 3x3, DenseNet-B's 1x1->3x3 bottleneck, or a 1x1 conv followed by 3x3 average
pooling); cells choose independently, since an op's cost differs by resolution and width.

Differentiable search: one architecture-parameter group per cell (``nodes`` rows x
``ops``), derived by per-row argmax; :meth:`DenseCellSpace.mixed_chain` describes the
supernet (each node a mixed layer over its candidate ``dense_layer`` blocks, all of the
same shape), so the ``diff_supernet`` weights manager and the darts / gdas / snas
controllers run on it, and :meth:`DenseCellSpace.cost_terms` gives the expected cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError, ValidationError
from hwnas.nn.dense_vocab import DENSE_KERNEL, DENSE_OPS
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, MAX_RESOLUTION, Arch, Decision, SearchSpace, ascii_text
from hwnas.search.spaces.differentiable import (
    CostTerm,
    MixedLayer,
    ParamGroup,
    chain_cost_terms,
    check_weights,
    one_hot,
)


@register("search_space", "dense_cell")
class DenseCellSpace(SearchSpace):
    """DenseNet-style cells (every node reads all earlier ones), one op per node per cell."""

    @dataclass(frozen=True)
    class Options:
        cells: int = opt(3, min=1, max=8, help="dense cells (a transition halves the resolution between two)")
        nodes: int = opt(4, min=1, max=32, help="nodes per cell")
        growth: int = opt(12, min=1, max=MAX_CHANNELS, help="channels each node adds (growth rate k)")
        stem_channels: int = opt(24, min=1, max=MAX_CHANNELS, help="stem outputs (DenseNet-BC: 2k)")
        compression: float = opt(0.5, gt=0.0, max=1.0, help="transitions keep this share of the channels")
        ops: list[str] = opt(list(DENSE_OPS), min_items=1, unique=True,
                             help=f"node operations to choose from (of {', '.join(DENSE_OPS)})")
        resolution: int = opt(32, min=4, max=MAX_RESOLUTION, help="input height and width")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels")
        num_classes: int = opt(10, min=2, max=MAX_CLASSES, help="classifier outputs")

        def check(self) -> None:
            bad = [o for o in self.ops if o not in DENSE_OPS]
            if bad:
                raise ConfigError(f"ops: unknown operation {bad[0]!r}; known: {', '.join(DENSE_OPS)}")
            if len(set(self.ops)) != len(self.ops):
                raise ConfigError("ops: give distinct operations")

    def __init__(self, options: "DenseCellSpace.Options | None" = None, **kw: object) -> None:
        self.options = options or DenseCellSpace.Options(**kw)  # type: ignore[arg-type]
        self.options.check()
        self.ops: tuple[str, ...] = tuple(self.options.ops)
        self.layout = self._layout()
        super().__init__()

    def _layout(self) -> list[tuple[int, int]]:
        """(input channels, resolution) of each cell."""
        o = self.options
        out, c, r = [], o.stem_channels, o.resolution
        for i in range(o.cells):
            if i > 0:
                c, r = max(1, int(o.compression * c)), (r + 1) // 2
            out.append((c, r))
            c += o.nodes * o.growth
        return out

    def build_decisions(self) -> Sequence[Decision]:
        return [Decision(f"cell{c}.node{i}", self.ops) for c in range(self.options.cells)
                for i in range(self.options.nodes)]

    # -- strings -----------------------------------------------------------------------------
    def to_str(self, arch: Arch) -> str:
        """Cells separated by ``|``, a cell's node ops by ``,``: ``conv3x3,conv1x1|...``."""
        arch = self.validate(arch)
        n = self.options.nodes
        return "|".join(",".join(self.ops[a] for a in arch[c * n:(c + 1) * n]) for c in range(self.options.cells))

    def from_str(self, text: str) -> Arch:
        text = ascii_text("dense_cell", text).strip()
        cells = [c.split(",") for c in text.split("|")]
        o = self.options
        if len(cells) != o.cells or any(len(c) != o.nodes for c in cells):
            raise ValidationError(f"dense_cell: expected {o.cells} cells of {o.nodes} ops joined by '|' and ',', "
                                  f"got {text[:80]!r}")
        bad = [t.strip() for c in cells for t in c if t.strip() not in self.ops]
        if bad:
            raise ValidationError(f"dense_cell: unknown op {bad[0]!r}; ops: {', '.join(self.ops)}")
        return tuple(self.ops.index(t.strip()) for c in cells for t in c)

    def to_jsonable(self, arch: Arch) -> Any:
        """``[[op, ...], ...]``: one list of node ops per cell."""
        return [cell.split(",") for cell in self.to_str(arch).split("|")]

    def from_jsonable(self, obj: Any) -> Arch:
        if isinstance(obj, str):
            return self.from_str(obj)
        if isinstance(obj, list) and obj and all(isinstance(c, list) for c in obj):
            if any(not isinstance(t, str) for c in obj for t in c):
                raise ValidationError("dense_cell: expected lists of op names per cell")
            return self.from_str("|".join(",".join(c) for c in obj))
        return super().from_jsonable(obj)

    # -- the network -------------------------------------------------------------------------
    def node_prim(self, cell: int, node: int, op: str) -> Primitive:
        c, r = self.layout[cell]
        c_in = c + node * self.options.growth
        return Primitive("dense_layer", c_in, c_in + self.options.growth, r, r, kernel=DENSE_KERNEL[op],
                         extras=(("cell_op", op),))

    def _fixed(self) -> tuple[Primitive, list[Primitive], list[Primitive]]:
        """Stem, transitions (one before every cell but the first), head."""
        o = self.options
        stem = Primitive("conv", o.in_channels, o.stem_channels, o.resolution, o.resolution, kernel=3)
        trans = []
        for i in range(1, o.cells):
            c_prev, r_prev = self.layout[i - 1]
            c_out = c_prev + o.nodes * o.growth
            trans.append(Primitive("dense_transition", c_out, self.layout[i][0], r_prev, r_prev, stride=2))
        c, r = self.layout[-1]
        c += o.nodes * o.growth
        head = [Primitive("pool", c, c, r, r, kernel=r, act="relu", extras=(("mode", "global"),)),
                Primitive("fc", c, o.num_classes, 1, 1)]
        return stem, trans, head

    def mixed_chain(self) -> list[Primitive | MixedLayer]:
        """The network as a chain: stem, per cell its nodes (mixed layers of candidate
        dense layers, group ``cell{c}``, row = node), transitions, head."""
        stem, trans, head = self._fixed()
        chain: list[Primitive | MixedLayer] = [stem]
        for c in range(self.options.cells):
            if c > 0:
                chain.append(trans[c - 1])
            chain += [MixedLayer(f"cell{c}", i, tuple(self.node_prim(c, i, op) for op in self.ops))
                      for i in range(self.options.nodes)]
        return chain + head

    def to_network(self, arch: Arch) -> NetworkSpec:
        arch = self.validate(arch)
        n = self.options.nodes
        nodes = [it.candidates[arch[int(it.group[4:]) * n + it.row]] if isinstance(it, MixedLayer) else it
                 for it in self.mixed_chain()]
        o = self.options
        return NetworkSpec.chain((o.in_channels, o.resolution, o.resolution), nodes,  # type: ignore[arg-type]
                                 space="dense_cell", arch=self.to_str(arch))

    def cell_graph(self, arch: Arch) -> NetworkSpec:
        """The first cell as an explicit DAG: its input (the stem), every node with edges
        from the input and all earlier nodes, and a concat output reading them all."""
        arch = self.validate(arch)
        stem = self._fixed()[0]
        c, r = self.layout[0]
        g = self.options.growth
        nodes: list[Primitive] = [stem]
        edges: list[tuple[int, int]] = []
        for i in range(self.options.nodes):
            op = self.ops[arch[i]]
            nodes.append(Primitive("conv", c + i * g, g, r, r, kernel=DENSE_KERNEL[op], act="relu",
                                   extras=(("cell_op", op),)))
            edges += [(j, i + 1) for j in range(i + 1)]
        nodes.append(Primitive("concat", c + self.options.nodes * g, c + self.options.nodes * g, r, r))
        edges += [(j, len(nodes) - 1) for j in range(len(nodes) - 1)]
        o = self.options
        return NetworkSpec((o.in_channels, r, r), tuple(nodes), tuple(edges),
                           (("arch", self.to_str(arch)), ("cell", True), ("space", "dense_cell")))

    def primitives(self) -> list[Primitive]:
        chain = self.mixed_chain()
        prims = [p for it in chain for p in (it.candidates if isinstance(it, MixedLayer) else (it,))]
        uniq = {p.key: p for p in prims if p is not None}
        return [uniq[k] for k in sorted(uniq)]

    # -- differentiable search -----------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        """One (nodes x ops) group per cell."""
        return [ParamGroup(f"cell{c}", self.options.nodes, self.ops) for c in range(self.options.cells)]

    def derive(self, weights: Mapping[str, np.ndarray]) -> Arch:
        w = check_weights(self.param_groups(), weights)
        return self.validate([int(a) for c in range(self.options.cells) for a in w[f"cell{c}"].argmax(axis=1)])

    def arch_weights(self, arch: Arch) -> dict[str, np.ndarray]:
        arch = self.validate(arch)
        n = self.options.nodes
        return one_hot(self.param_groups(), {f"cell{c}": list(arch[c * n:(c + 1) * n])
                                             for c in range(self.options.cells)})

    def cost_terms(self) -> list[CostTerm]:
        chain = self.mixed_chain()
        return chain_cost_terms([p for p in chain if isinstance(p, Primitive)],
                                [m for m in chain if isinstance(m, MixedLayer)])
