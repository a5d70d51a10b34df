"""Differentiable supernet (weights manager ``diff_supernet``): mixed operations weighted
by architecture parameters, for DARTS, PC-DARTS, GDAS, SNAS and FBNet.

On the ``darts`` space it is DARTS' search network: every edge mixes all operations,
built with affine-free BatchNorm and a BatchNorm after pooling as in DARTS; options turn
it into PC-DARTS (``partial_channels`` K and ``edge_normalization``). On block-wise
spaces that describe their layers as a chain of mixed layers (``mixed_chain``: fbnet,
mbv2) it is FBNet's supernet. A rollout with architecture weights (from a
differentiable controller) runs mixed, and its loss reaches the controller's logits; a
hard one-hot rollout (GDAS) runs only the sampled operation of each edge
(``hard_paths``); a plain rollout runs its architecture's ops alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hwnas import registry
from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.nn.cell_ops import FactorizedReduce, make_cell_op, relu_conv_bn
from hwnas.registry import register
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.darts import CellShape, DartsSpace
from hwnas.search.spaces.differentiable import ParamGroup, masked_argmax
from hwnas.search.weights.mixed import (
    DartsSupernetModule,
    DiscretePlan,
    MixedChainModule,
    MixedPlan,
    darts_plan,
)
from hwnas.search.weights.supernet_mbv2 import SubnetCandidate, SupernetBase


def _served() -> str:
    spaces = [e.name for e in registry.list("search_space")
              if issubclass(e.obj, DartsSpace) or callable(getattr(e.obj, "mixed_chain", None))]
    return ", ".join(spaces)


@register("weights_manager", "diff_supernet")
class DiffSupernet(SupernetBase):
    """Mixed-op supernet (DARTS; PC-DARTS partial channels + edge normalisation; GDAS hard paths; FBNet)."""


    #: Rollouts' architecture weights get gradients through this manager's candidates.
    gives_gradients = True

    @dataclass(frozen=True)
    class Options:
        partial_channels: int = opt(1, min=1, help="PC-DARTS K: edges mix their ops on 1/K of the channels "
                                                   "(1 = off; darts space)")
        edge_normalization: bool = opt(False, help="PC-DARTS: weight each node's inputs by learned edge weights "
                                                   "(darts space)")
        affine: bool = opt(False, help="learn BatchNorm scale and shift inside the cells (DARTS searches without)")
        pool_bn: bool = opt(True, help="BatchNorm after pooling ops, so they mix at the scale of the convolutions")
        hard_paths: bool = opt(True, help="hard one-hot rollouts (GDAS) run only the sampled op of each edge; "
                                          "false runs every op (same values, more work)")

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, DartsSpace) or callable(getattr(space_cls, "mixed_chain", None))

    def __init__(self, options: "DiffSupernet.Options | None" = None, *, space: SearchSpace, seed: int = 0,
                 **_: Any) -> None:
        self.check_space(type(space))
        self.options = o = options or DiffSupernet.Options()
        self.space = space
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            if isinstance(space, DartsSpace):
                bad = [s.c for s in space.shapes if s.c % o.partial_channels]
                if bad:
                    raise ConfigError(f"weights_manager.partial_channels: {o.partial_channels} must divide the cells' "
                                      f"channels, got {bad[0]}")
                self.module: nn.Module = DartsSupernetModule(space, self._preprocess, self._ops, o.partial_channels)
            elif callable(getattr(space, "mixed_chain", None)):
                if o.partial_channels > 1 or o.edge_normalization:
                    raise ConfigError("weights_manager.partial_channels: partial channels and edge normalisation "
                                      "apply to cell spaces (darts)")
                self.module = MixedChainModule(space.mixed_chain())  # type: ignore[attr-defined]
            else:  # pragma: no cover - check_space above refuses these
                raise ConfigError(f"weights_manager.type: diff_supernet serves the spaces {_served()}; "
                                  f"got {space.name!r}")

    def _preprocess(self, shape: CellShape) -> tuple[nn.Module, nn.Module]:
        a = self.options.affine
        pre0 = FactorizedReduce(shape.c_pp, shape.c, a) if shape.reduction_prev else relu_conv_bn(shape.c_pp, shape.c, a)
        return pre0, relu_conv_bn(shape.c_p, shape.c, a)

    def _ops(self, shape: CellShape, j: int) -> list[nn.Module]:
        o = self.options
        stride = shape.edge(j)[1]
        return [make_cell_op(op, shape.c // o.partial_channels, stride, affine=o.affine, pool_bn=o.pool_bn)
                for op in self.space.ops]  # type: ignore[attr-defined]

    def param_groups(self) -> list[ParamGroup]:
        """The space's groups, plus edge-weight groups under edge normalisation."""
        extra = self.space.edge_param_groups() if self.options.edge_normalization else []  # type: ignore[attr-defined]
        return [*self.space.param_groups(), *extra]

    def config_of(self, arch: Arch) -> DiscretePlan:
        if isinstance(self.space, DartsSpace):
            return darts_plan(self.space, arch)
        w = self.space.arch_weights(arch)
        return DiscretePlan({g.name: masked_argmax(w[g.name], g.mask_array()).tolist()
                             for g in self.space.param_groups()})

    def assemble_candidate(self, rollout: Rollout) -> SubnetCandidate:
        aw = rollout.arch_weights
        if aw is None:
            return super().assemble_candidate(rollout)
        missing = [g.name for g in self.param_groups() if g.name not in aw.weights]
        if missing:
            raise ConfigError(f"controller: its rollouts lack the architecture weights {', '.join(missing)} this "
                              "supernet mixes by (build the controller with this weights manager)")
        index = {k: v.tolist() for k, v in aw.index.items()} if aw.index is not None and self.options.hard_paths \
            else None
        cand = SubnetCandidate(self.module, MixedPlan(dict(aw.weights), index), tuple(rollout.arch))
        rollout.candidate = cand
        return cand

    def _export_into(self, net: nn.Module, arch: Arch) -> None:
        raise ConfigError("diff_supernet: its mixed ops (affine-free BN, partial channels) are not the final "
                          "network's ops; train the derived architecture from scratch")
