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
  resolution it computes exactly the space's network;
* **width** (when the space has ``stage_widths``) - a stage of width ``w`` uses the first
  output channels of its blocks and the next layer reads only those; a block's hidden
  channels follow its active input channels. :meth:`MBV3Supernet.sort_stage_channels`
  orders each stage's channels by importance before the width phase, so the slice keeps
  the channels that matter.

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
from hwnas.search.training import resize_input
from hwnas.search.weights.supernet_mbv2 import ElasticMBConv, ElasticOptions, SupernetBase, sliced_bn

#: The resolution, per stage the (expansion, kernel) of each block that runs, and each
#: stage's active output channels.
SubnetConfig = tuple[int, list[list[tuple[int, int]]], list[int]]


def sorted_within(importance: torch.Tensor, keep: int = 0) -> torch.Tensor:
    """Indices ordering ``importance`` descending, within the first ``keep`` entries and
    within the rest separately when 0 < keep < len (OFA's ``re_organize_middle_weights``
    at a later expansion stage: channels already in use stay in front)."""
    if not 0 < keep < len(importance):
        return torch.argsort(importance, descending=True)
    return torch.cat([torch.argsort(importance[:keep], descending=True),
                      keep + torch.argsort(importance[keep:], descending=True)])


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

    def forward(self, x: torch.Tensor, e: int, k: int, c_out: int | None = None) -> torch.Tensor:
        """The (e, k) block on ``x``'s channels (the first ones of its input), writing the
        first ``c_out`` output channels (default all); residual when stride 1 and the
        active widths agree, as the builders' MBConv."""
        c_in, c_out = x.shape[1], self.c_out if c_out is None else c_out
        if e == 1:
            mid, h = c_in, x
        else:
            mid = int(round(c_in * e))
            h = self.act(sliced_bn(F.conv2d(x, self.expand.weight[:mid, :c_in]), self.expand_bn, mid))
        h = F.conv2d(h, self.dw_weight(k, mid), None, self.stride, k // 2, 1, mid)
        h = self.act(sliced_bn(h, self.dw_bn, mid))
        if self.se:
            rw, rb, ew, eb = self.se_slices(mid)
            s = F.relu(F.conv2d(F.adaptive_avg_pool2d(h, 1), rw, rb))
            h = h * F.hardsigmoid(F.conv2d(s, ew, eb))
        h = sliced_bn(F.conv2d(h, self.project.weight[:c_out, :mid]), self.project_bn, c_out)
        return x + h if self.stride == 1 and c_in == c_out else h

    @torch.no_grad()
    def sort_channels(self, keep: int = 0) -> bool:
        """Reorder the hidden channels by importance (L1 norm of their project weights),
        most important first, and the SE's reduced channels likewise (OFA's step before
        shrinking the expansion: a small expansion then keeps the channels that matter).
        The largest subnet computes the same function afterwards. With ``keep`` (OFA's
        re-sort before the second expansion sub-phase) the first ``keep`` hidden channels
        - those the smaller expansion trained so far used - are sorted among themselves
        and the rest after them, so that expansion keeps its channels (and its SE's
        reduced ones) and computes the same function too, while a still smaller one gets
        the most important of them. A block that may run at expansion 1 (whose hidden
        channels are its inputs) is left as it is; returns whether the block was reordered."""
        if self.mid_max == self.c_in:
            return False
        idx = sorted_within(self.project.weight.abs().sum(dim=(0, 2, 3)), keep)
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
            se_keep = _divisible(keep / 4) if keep else 0
            se_idx = sorted_within(self.se_expand.weight.abs().sum(dim=(0, 2, 3)), se_keep)
            self.se_expand.weight.copy_(self.se_expand.weight[:, se_idx])
            self.se_reduce.weight.copy_(self.se_reduce.weight[se_idx])
            self.se_reduce.bias.copy_(self.se_reduce.bias[se_idx])
        return True

    @torch.no_grad()
    def export_into(self, block: nn.Module, e: int, k: int, c_in: int | None = None, c_out: int | None = None) -> None:
        """Copy the (e, k) slice at ``c_in`` -> ``c_out`` active channels (default all) into a
        builders ``MBConv`` (with its SqueezeExcite)."""
        body = list(block.body)  # type: ignore[arg-type]
        c_in = self.c_in if c_in is None else c_in
        if self.se:
            se_mod = body.pop(-2)
            rw, rb, ew, eb = self.se_slices(c_in if e == 1 else int(round(c_in * e)))
            for dst, src in ((se_mod.reduce.weight, rw), (se_mod.reduce.bias, rb), (se_mod.expand.weight, ew),
                             (se_mod.expand.bias, eb)):
                dst.copy_(src)
        plain = nn.Module()
        plain.body = body  # type: ignore[assignment]
        super().export_into(plain, e, k, c_in, c_out)


class MBV3SupernetModule(nn.Module):
    """The shared weights; ``forward(x, config)`` runs one subnet."""

    def __init__(self, space: MBV3Space, kernel_transform: bool = True) -> None:
        super().__init__()
        o = space.options
        widest = [d.choices.index(max(d.choices)) if d.name.endswith(".w") else 0 for d in space.decisions]
        spec = space.to_network(space.validate(widest))  # head/tail: any arch at full width
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
        resolution, stages, widths = config
        x = resize_input(x, resolution)
        for m in self.head:
            x = m(x)
        for blocks, choices, c_out in zip(self.stages, stages, widths):
            for block, (e, k) in zip(blocks, choices):
                x = block(x, e, k, c_out)
        final = self.tail[0]  # conv-BN-act reading the last stage's active channels
        x = final[2](final[1](F.conv2d(x, final[0].weight[:, :x.shape[1]])))
        for m in self.tail[1:]:
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

    def sort_channels(self, keep_expansion: int | None = None) -> int:
        """Sort every elastic block's hidden channels by importance (see
        :meth:`ElasticMBConvSE.sort_channels`), as OFA does before each elastic-expansion
        sub-phase; ``keep_expansion``: the hidden channels of that expansion stay in front
        (OFA's re-sort after the sub-phase that trained only the two largest expansions).
        Returns the number of blocks reordered. Optimizer state (momentum) is not
        permuted: sort between training phases, with a fresh optimizer after."""
        return sum(int(block.sort_channels(block.mid(keep_expansion) if keep_expansion else 0))
                   for stage in self.module.stages for block in stage)

    @torch.no_grad()
    def sort_stage_channels(self) -> int:
        """Order each stage's output channels by importance (L1 norm of the rows of its
        blocks' project weights), most important first, and permute every reader of them
        alike (the stage's later blocks, the next stage's first block or the final expand
        layer), so every subnet computes the same function afterwards and a narrow stage
        keeps the channels that matter (OFA's sort before shrinking). Stages whose blocks
        may read their input without an expand layer (expansion 1) are left as they are;
        returns the number of stages reordered. Permutes no optimizer state: call between
        phases, with a fresh optimizer after."""
        mod = self.module
        sorted_stages = 0
        for s, blocks in enumerate(mod.stages):
            if any(b.mid_max == b.c_in for b in blocks) or blocks[0].residual or \
                    (s + 1 < len(mod.stages) and mod.stages[s + 1][0].mid_max == mod.stages[s + 1][0].c_in):
                continue
            idx = torch.argsort(sum(b.project.weight.abs().sum(dim=(1, 2, 3)) for b in blocks), descending=True)
            for b in blocks:
                b.project.weight.copy_(b.project.weight[idx])
                for t in (b.project_bn.weight, b.project_bn.bias, b.project_bn.running_mean, b.project_bn.running_var):
                    t.copy_(t[idx])
            readers = [b.expand.weight for b in blocks[1:]]
            readers.append(mod.stages[s + 1][0].expand.weight if s + 1 < len(mod.stages) else mod.tail[0][0].weight)
            for w in readers:
                w.copy_(w[:, idx])
            sorted_stages += 1
        return sorted_stages

    def config_of(self, arch: Arch) -> SubnetConfig:
        sp: MBV3Space = self.space  # type: ignore[assignment]
        return sp.resolution_of(arch), sp.stage_choices(arch), sp.stage_channels(arch)

    def stage_choices(self, arch: Arch) -> list[list[tuple[int, int]]]:
        return self.config_of(arch)[1]

    def _export_into(self, net: nn.Module, arch: Arch) -> None:
        """Head state dicts copied, each running block sliced at its active channels, the
        final expand layer's input columns sliced to the last stage's width, the rest copied."""
        sp: MBV3Space = self.space  # type: ignore[assignment]
        nodes = list(net.nodes)  # type: ignore[attr-defined]
        mod = self.module
        for dst, src in zip(nodes[:2], mod.head):
            dst.load_state_dict(src.state_dict())
        it = iter(nodes[2:-4])
        c_in = sp.c_first
        for blocks, choices, c_out in zip(mod.stages, *self.config_of(arch)[1:]):
            for block, (e, k) in zip(blocks, choices):
                block.export_into(next(it), e, k, c_in, c_out)
                c_in = c_out
        final = {k: v[:, :c_in] if k == "0.weight" else v for k, v in mod.tail[0].state_dict().items()}
        nodes[-4].load_state_dict(final)
        for dst, src in zip(nodes[-3:], mod.tail[1:]):
            dst.load_state_dict(src.state_dict())
