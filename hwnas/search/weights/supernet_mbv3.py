"""OFA elastic supernet for the ``mbv3`` space (weights manager ``mbv3_supernet``).

The same rules as the mbv2 supernet (:mod:`hwnas.search.weights.supernet_mbv2`), with
what MobileNetV3 adds:

* **kernel** - only the largest depthwise kernel is stored; a smaller one is the centre
  of the next larger kernel passed through a learned ``k*k x k*k`` transform, chained
  7 -> 5 -> 3 as in Once-for-All (identity at init);
* **expansion** - a block of expansion ``e`` uses the first ``c_in * e`` hidden channels
  of the largest block; its squeeze-excite uses the first ``divisible(mid / 4)`` reduced
  channels and the first ``mid`` gate channels (OFA's DynamicSE);
* **depth** - a stage of depth ``d`` runs its first ``d`` blocks;
* **resolution** - a candidate resizes its input batch to its architecture's resolution
  (bilinear), as OFA trains with elastic resolution; given an input already at that
  resolution it computes exactly the space's network.

Stem, first block and head are the very modules the builders make for the space's
primitives, so :meth:`MBV3Supernet.export_subnet` gives the network the profilers time.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.nn.builders import _divisible, build_primitive
from hwnas.registry import register
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.mbv3 import STAGES, MBV3Space
from hwnas.search.weights.supernet_mbv2 import ElasticMBConv, ElasticOptions, SupernetBase, sliced_bn

#: The resolution, then per stage the (expansion, kernel) of each block that runs.
SubnetConfig = tuple[int, list[list[tuple[int, int]]]]


class ElasticMBConvSE(ElasticMBConv):
    """An elastic inverted residual with an optional elastic squeeze-excite after the
    depthwise layer (MobileNetV3's order: expand, depthwise, SE, project)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansions: Sequence[int], kernels: Sequence[int],
                 act: str, se: bool, kernel_transform: bool = True) -> None:
        super().__init__(c_in, c_out, stride, expansions, kernels, act, kernel_transform)
        self.se = se
        if se:
            se_max = _divisible(self.mid_max / 4)
            self.se_reduce = nn.Conv2d(self.mid_max, se_max, 1)
            self.se_expand = nn.Conv2d(se_max, self.mid_max, 1)

    def se_slices(self, mid: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reduce weight, reduce bias, expand weight, expand bias) at ``mid`` channels."""
        r = _divisible(mid / 4)
        return (self.se_reduce.weight[:r, :mid], self.se_reduce.bias[:r],
                self.se_expand.weight[:mid, :r], self.se_expand.bias[:mid])

    def forward(self, x: torch.Tensor, e: int, k: int) -> torch.Tensor:
        if e == 1:
            mid, h = self.c_in, x
        else:
            mid = self.mid(e)
            h = self.act(sliced_bn(F.conv2d(x, self.expand.weight[:mid]), self.expand_bn, mid))
        h = F.conv2d(h, self.dw_weight(k, mid), None, self.stride, k // 2, 1, mid)
        h = self.act(sliced_bn(h, self.dw_bn, mid))
        if self.se:
            rw, rb, ew, eb = self.se_slices(mid)
            s = F.relu(F.conv2d(F.adaptive_avg_pool2d(h, 1), rw, rb))
            h = h * F.hardsigmoid(F.conv2d(s, ew, eb))
        h = sliced_bn(F.conv2d(h, self.project.weight[:, :mid]), self.project_bn, self.c_out)
        return x + h if self.residual else h

    @torch.no_grad()
    def sort_channels(self) -> bool:
        """Reorder the hidden channels by importance (L1 norm of their project weights),
        most important first, and the SE's reduced channels likewise (OFA's step before
        shrinking the expansion: a small expansion then keeps the channels that matter).
        The largest subnet computes the same function afterwards. A block that may run at
        expansion 1 (whose hidden channels are its inputs) is left as it is; returns
        whether the block was reordered."""
        if self.mid_max == self.c_in:
            return False
        idx = torch.argsort(self.project.weight.abs().sum(dim=(0, 2, 3)), descending=True)
        for w in (self.expand.weight, self.dw.weight):
            w.copy_(w[idx])
        for bn in (self.expand_bn, self.dw_bn):
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t.copy_(t[idx])
        self.project.weight.copy_(self.project.weight[:, idx])
        if self.se:
            self.se_reduce.weight.copy_(self.se_reduce.weight[:, idx])
            self.se_expand.weight.copy_(self.se_expand.weight[idx])
            self.se_expand.bias.copy_(self.se_expand.bias[idx])
            se_idx = torch.argsort(self.se_expand.weight.abs().sum(dim=(0, 2, 3)), descending=True)
            self.se_expand.weight.copy_(self.se_expand.weight[:, se_idx])
            self.se_reduce.weight.copy_(self.se_reduce.weight[se_idx])
            self.se_reduce.bias.copy_(self.se_reduce.bias[se_idx])
        return True

    @torch.no_grad()
    def export_into(self, block: nn.Module, e: int, k: int) -> None:
        """Copy the (e, k) slice into a builders ``MBConv`` (with its SqueezeExcite)."""
        body = list(block.body)  # type: ignore[arg-type]
        if self.se:
            se_mod = body.pop(-2)
            rw, rb, ew, eb = self.se_slices(self.c_in if e == 1 else self.mid(e))
            for dst, src in ((se_mod.reduce.weight, rw), (se_mod.reduce.bias, rb), (se_mod.expand.weight, ew),
                             (se_mod.expand.bias, eb)):
                dst.copy_(src)
        plain = nn.Module()
        plain.body = body  # type: ignore[assignment]
        super().export_into(plain, e, k)


class MBV3SupernetModule(nn.Module):
    """The shared weights; ``forward(x, config)`` runs one subnet."""

    def __init__(self, space: MBV3Space, kernel_transform: bool = True) -> None:
        super().__init__()
        o = space.options
        spec = space.to_network(space.validate([0] * len(space.decisions)))  # head/tail: any arch
        self.head = nn.ModuleList(build_primitive(p).train() for p in spec.nodes[:2])
        self.tail = nn.ModuleList(build_primitive(p).train() for p in spec.nodes[-4:])
        self.stages = nn.ModuleList()
        c = space.c_first
        for s, (_, stride, act, se) in enumerate(STAGES):
            blocks = nn.ModuleList()
            for b in range(space.max_depth):
                blocks.append(ElasticMBConvSE(c, space.c_stages[s], stride if b == 0 else 1, o.expansions,
                                              o.kernels, act, se, kernel_transform))
                c = space.c_stages[s]
            self.stages.append(blocks)

    def forward(self, x: torch.Tensor, config: SubnetConfig) -> torch.Tensor:
        resolution, stages = config
        if tuple(x.shape[-2:]) != (resolution, resolution):
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
        for m in self.head:
            x = m(x)
        for blocks, choices in zip(self.stages, stages):
            for block, (e, k) in zip(blocks, choices):
                x = block(x, e, k)
        for m in self.tail:
            x = m(x)
        return x


@register("weights_manager", "mbv3_supernet")
class MBV3Supernet(SupernetBase):
    """OFA elastic supernet for mbv3 (kernel via transforms, expansion, depth, resolution)."""

    supernet_for = ("mbv3",)

    Options = ElasticOptions

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, MBV3Space)

    def __init__(self, options: ElasticOptions | None = None, *, space: SearchSpace, seed: int = 0,
                 **_: Any) -> None:
        self.check_space(type(space))
        self.options = options or ElasticOptions()
        self.space = space
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = MBV3SupernetModule(space, self.options.kernel_transform)  # type: ignore[arg-type]

    def sort_channels(self) -> int:
        """Sort every elastic block's hidden channels by importance (see
        :meth:`ElasticMBConvSE.sort_channels`), as OFA does before the elastic-expansion
        phase; returns the number of blocks reordered. Optimizer state (momentum) is not
        permuted: sort between training phases, with a fresh optimizer after."""
        return sum(int(block.sort_channels()) for stage in self.module.stages for block in stage)

    def config_of(self, arch: Arch) -> SubnetConfig:
        sp: MBV3Space = self.space  # type: ignore[assignment]
        return sp.resolution_of(arch), sp.stage_choices(arch)

    def stage_choices(self, arch: Arch) -> list[list[tuple[int, int]]]:
        return self.config_of(arch)[1]
