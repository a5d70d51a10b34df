"""Weight-sharing supernet for the ``nb201`` space (weights manager ``nb201_supernet``).

Every cell keeps one module per (edge, op) - the five NAS-Bench-201 ops, built by
:func:`hwnas.nn.builders.build_primitive` from the space's own primitives - and
a subnet picks one op per edge, the same choice in every cell (the space's cell is
shared by all cells). Because the modules are the builders' modules, a subnet runs as
the graph of ``space.to_network(arch)`` over shared modules: the candidate is
numerically the network the profilers time, and exporting it is a state-dict copy.

The skeleton size follows the space's options (C=16, N=5 by default; tests use C=4,
N=1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hwnas.nn.builders import build_primitive
from hwnas.primitives import Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.nb201 import EDGES, OPS, NB201Space
from hwnas.search.weights.supernet_mbv2 import SupernetBase

_PARAMETRIC = ("nor_conv_1x1", "nor_conv_3x3")


class NB201SupernetModule(nn.Module):
    """Shared modules: stem, per-cell per-edge op dicts, residual blocks, pool, classifier.

    ``forward(x, plan)`` runs a plan made by :meth:`plan`: the network's modules in
    NetworkSpec node order and each node's predecessors, so running a subnet and
    building its standalone network walk the same graph.
    """

    def __init__(self, space: NB201Space) -> None:
        super().__init__()
        spec = space.to_network(space.validate([0] * len(EDGES)))
        self.stem = build_primitive(spec.nodes[0]).train()
        self.cells = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.layout: list[tuple[str, int]] = []  # per spec node: ("stem"|"res"|"edge"|...), index
        for i, p in enumerate(spec.nodes):
            if i == 0:
                self.layout.append(("stem", 0))
            elif p.op == "nb201_resblock":
                self.layout.append(("res", len(self.resblocks)))
                self.resblocks.append(build_primitive(p).train())
            elif p.op == "pool":
                self.layout.append(("pool", 0))
                self.pool = build_primitive(p).train()
            elif p.op == "fc":
                self.layout.append(("fc", 0))
                self.fc = build_primitive(p).train()
            else:
                # First edge node of a new cell: make the cell's 6 op dicts.
                edge_idx = sum(1 for kind, _ in self.layout if kind == "edge") % len(EDGES)
                if edge_idx == 0:
                    self.cells.append(nn.ModuleList(self._edge_ops(p) for _ in EDGES))
                self.layout.append(("edge", (len(self.cells) - 1) * len(EDGES) + edge_idx))

    @staticmethod
    def _edge_ops(p: Primitive) -> nn.ModuleDict:
        return nn.ModuleDict({op: build_primitive(Primitive(op, p.c_in, p.c_out, p.h, p.w,
                                                            kernel=3 if op.endswith("3x3") else 1)).train()
                              for op in OPS})

    def node_modules(self, arch: Arch) -> list[nn.Module]:
        """The shared module of every NetworkSpec node of ``arch``, in node order."""
        out: list[nn.Module] = []
        for kind, idx in self.layout:
            if kind == "stem":
                out.append(self.stem)
            elif kind == "res":
                out.append(self.resblocks[idx])
            elif kind == "pool":
                out.append(self.pool)
            elif kind == "fc":
                out.append(self.fc)
            else:
                cell, edge = divmod(idx, len(EDGES))
                out.append(self.cells[cell][edge][OPS[arch[edge]]])
        return out

    def forward(self, x: torch.Tensor, plan: tuple[list[nn.Module], list[list[int]]]) -> torch.Tensor:
        # 'none' edges still run (a multiply by zero): skipping them would change the
        # result where every input of a node is 'none' (BN shifts turn zeros non-zero).
        mods, preds = plan
        outs: list[torch.Tensor] = []
        for j, mod in enumerate(mods):
            if j == 0:
                inp = x
            else:
                inp = outs[preds[j][0]]
                for i in preds[j][1:]:
                    inp = inp + outs[i]
            outs.append(mod(inp))
        return outs[-1]


@register("weights_manager", "nb201_supernet")
class NB201Supernet(SupernetBase):
    """NAS-Bench-201 supernet: shared weights per (cell, edge, op)."""

    supernet_for = ("nb201",)

    @dataclass(frozen=True)
    class Options:
        pass

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, NB201Space)

    def __init__(self, options: "NB201Supernet.Options | None" = None, *, space: SearchSpace, seed: int = 0,
                 **_: Any) -> None:
        self.check_space(type(space))
        self.options = options or NB201Supernet.Options()
        self.space = space
        torch.manual_seed(seed)
        self.module = NB201SupernetModule(space)
        self._preds: list[list[int]] | None = None

    def config_of(self, arch: Arch) -> tuple[list[nn.Module], list[list[int]]]:
        if self._preds is None:  # the graph does not depend on the ops, only the modules do
            spec = self.space.to_network(arch)
            self._preds = [spec.predecessors(j) for j in range(len(spec.nodes))]
        return self.module.node_modules(arch), self._preds

    def _export_into(self, net: nn.Module, arch: Arch) -> None:
        for dst, src in zip(net.nodes, self.module.node_modules(arch)):  # type: ignore[attr-defined]
            dst.load_state_dict(src.state_dict())

    def extreme_arch(self, which: str) -> Arch:
        """Largest: every edge a 3x3 conv; smallest: every edge a skip (no weights)."""
        op = "nor_conv_3x3" if which == "max" else "skip_connect"
        return tuple(OPS.index(op) for _ in EDGES)
