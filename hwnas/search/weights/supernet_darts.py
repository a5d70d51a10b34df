"""Weight-sharing supernet for the ``darts`` cell space (weights manager ``darts_supernet``).

ENAS (Pham et al., 2018) trains one set of weights for every cell of a space and lets an
RL controller sample the cells that train and get scored: this manager is that shared
set. Every edge of every cell keeps one module per operation, built by the profilers'
builders from the space's own primitives (as the nb201 supernet does), and an
architecture runs its chosen (input, op) pairs only. Because the modules are the
builders' modules, :meth:`DartsSupernet.export_subnet` is a state-dict copy into the
network the profilers time, and ``hwnas train --from-supernet`` starts from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hwnas.nn.builders import build_primitive
from hwnas.registry import register
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.darts import CellShape, DartsSpace, op_primitive
from hwnas.search.weights.mixed import DartsSupernetModule, DiscretePlan, darts_plan
from hwnas.search.weights.supernet_mbv2 import SupernetBase


def builder_preprocess(shape: CellShape) -> tuple[nn.Module, nn.Module]:
    pre0, pre1 = shape.preprocess()
    return build_primitive(pre0).train(), build_primitive(pre1).train()


def builder_ops(space: DartsSpace, shape: CellShape, j: int) -> list[nn.Module]:
    r, stride = shape.edge(j)
    return [build_primitive(op_primitive(op, shape.c, r, stride)).train() for op in space.ops]


@register("weights_manager", "darts_supernet")
class DartsSupernet(SupernetBase):
    """ENAS-style shared weights for darts cells: one module per (cell, edge, op)."""


    supernet_for = ("darts",)

    @dataclass(frozen=True)
    class Options:
        pass

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, DartsSpace)

    def __init__(self, options: "DartsSupernet.Options | None" = None, *, space: SearchSpace, seed: int = 0,
                 **_: Any) -> None:
        self.check_space(type(space))
        self.options = options or DartsSupernet.Options()
        self.space = space
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.module = DartsSupernetModule(space, builder_preprocess, lambda s, j: builder_ops(space, s, j))

    def config_of(self, arch: Arch) -> DiscretePlan:
        return darts_plan(self.space, arch)  # type: ignore[arg-type]

    def node_modules(self, arch: Arch) -> list[nn.Module | None]:
        """The shared module of every NetworkSpec node of ``arch`` (None: no weights)."""
        space: DartsSpace = self.space  # type: ignore[assignment]
        g = space.genotype(space.canonical(arch))
        mods: list[nn.Module | None] = [self.module.stem]
        for shape, cell in zip(space.shapes, self.module.cells):
            mods += [cell.pre0, cell.pre1]
            for i, node in enumerate(g[shape.kind]):
                mods += [cell.edges[cell.row[(i, j)]].ops[space.ops.index(op)] for op, j in node]
                mods.append(None)  # the node's sum
            mods.append(None)  # the concatenation
        return mods + [self.module.pool, self.module.fc]

    def _export_into(self, net: nn.Module, arch: Arch) -> None:
        for dst, src in zip(net.nodes, self.node_modules(arch)):  # type: ignore[attr-defined]
            if src is not None:
                dst.load_state_dict(src.state_dict())
