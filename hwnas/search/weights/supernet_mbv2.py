"""OFA-style elastic supernet for the ``mbv2`` space (weights manager ``supernet``).

One set of weights serves every architecture of the space, so a search can score
thousands of subnets after training one network:

* **kernel** - each block keeps only its largest depthwise kernel; a smaller kernel is
  the centre of the next larger one passed through a learned ``k*k x k*k`` transform
  (identity at init), chained 7 -> 5 -> 3 as in Once-for-All, so small kernels can
  drift from a plain crop without disturbing the large one;
* **expansion** - a block of expansion ``e`` uses the first ``round(c_in * e)`` hidden
  channels of the largest block (expand rows, depthwise filters, project columns);
* **depth** - a stage of depth ``d`` runs its first ``d`` blocks and skips the rest;
* **BatchNorm** - one BN per layer at the largest width, used through slices of its
  affine parameters and running statistics. Statistics of a slice are only right for
  the subnet that produced them, so evaluators recalibrate BN per subnet.

Fixed parts of the network (stem, first block, last block, head, classifier) are the
very modules :func:`hwnas.nn.builders.build_primitive` makes for the space's
primitives, so exporting a subnet (:meth:`MBV2Supernet.export_subnet`) is a state-dict
copy for them and a slice for the elastic blocks, and the exported module is exactly
the network the profilers time and the cost models predict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.nn.builders import build_network, build_primitive, make_act
from hwnas.registry import register
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.mbv2 import STAGES, MBV2Space
from hwnas.search.weights.base import WeightsManager

#: Per stage, the (expansion, kernel) of each block that runs.
SubnetConfig = list[list[tuple[int, int]]]


def sliced_bn(x: torch.Tensor, bn: nn.BatchNorm2d, c: int) -> torch.Tensor:
    """``bn`` applied to the first ``c`` channels, with nn.BatchNorm2d's exact rules
    (cumulative average when ``momentum`` is None), so BN recalibration by resetting
    stats and setting momentum=None works on elastic layers as on plain ones."""
    use_batch = bn.training or bn.running_mean is None
    factor = 0.0
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    rm = bn.running_mean[:c] if bn.running_mean is not None else None
    rv = bn.running_var[:c] if bn.running_var is not None else None
    return F.batch_norm(x, rm, rv, bn.weight[:c], bn.bias[:c], use_batch, factor, bn.eps)


class ElasticMBConv(nn.Module):
    """An inverted-residual block at its largest expansion and kernel, runnable at any
    smaller (expansion, kernel) by slicing; see the module docstring for the rules."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansions: Sequence[int], kernels: Sequence[int],
                 act: str, kernel_transform: bool = True) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.kernels = sorted(set(kernels), reverse=True)
        self.k_max = self.kernels[0]
        self.mid_max = max(self.mid(e) for e in expansions)
        self.expand = nn.Conv2d(c_in, self.mid_max, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(self.mid_max)
        self.dw = nn.Conv2d(self.mid_max, self.mid_max, self.k_max, stride, self.k_max // 2,
                            groups=self.mid_max, bias=False)
        self.dw_bn = nn.BatchNorm2d(self.mid_max)
        self.project = nn.Conv2d(self.mid_max, c_out, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c_out)
        self.act = make_act(act)
        self.residual = stride == 1 and c_in == c_out
        # One learned transform per smaller kernel, keyed "5to3"-style like the chain.
        self.transforms = nn.ParameterDict()
        if kernel_transform:
            for big, small in zip(self.kernels, self.kernels[1:]):
                self.transforms[f"{big}to{small}"] = nn.Parameter(torch.eye(small * small))

    def mid(self, e: int) -> int:
        """Hidden channels at expansion ``e`` (the builders' rule: round(c_in * e))."""
        return int(round(self.c_in * e))

    def dw_weight(self, k: int, mid: int) -> torch.Tensor:
        """Depthwise filters of size ``k`` for the first ``mid`` channels."""
        if k not in self.kernels:
            raise ConfigError(f"kernel {k} is not one of this supernet's kernels {self.kernels}")
        w = self.dw.weight[:mid]
        for big, small in zip(self.kernels, self.kernels[1:]):
            if big == k:
                break
            lo = (big - small) // 2
            w = w[:, :, lo:lo + small, lo:lo + small]
            key = f"{big}to{small}"
            if key in self.transforms:
                w = (w.reshape(mid, small * small) @ self.transforms[key].t()).reshape(mid, 1, small, small)
        return w

    def forward(self, x: torch.Tensor, e: int, k: int) -> torch.Tensor:
        if e == 1:  # builders drop the expand layer at e1; the depthwise reads x directly
            mid, h = self.c_in, x
        else:
            mid = self.mid(e)
            h = self.act(sliced_bn(F.conv2d(x, self.expand.weight[:mid]), self.expand_bn, mid))
        h = F.conv2d(h, self.dw_weight(k, mid), None, self.stride, k // 2, 1, mid)
        h = self.act(sliced_bn(h, self.dw_bn, mid))
        h = sliced_bn(F.conv2d(h, self.project.weight[:, :mid]), self.project_bn, self.c_out)
        return x + h if self.residual else h

    @torch.no_grad()
    def export_into(self, block: nn.Module, e: int, k: int, c_in: int | None = None, c_out: int | None = None) -> None:
        """Copy the (e, k) slice into a builders ``MBConv`` of the same primitive; ``c_in`` /
        ``c_out``: the active input / output channels of an elastic-width network (default all)."""
        layers = list(block.body)  # type: ignore[arg-type]
        c_in = self.c_in if c_in is None else c_in
        c_out = self.c_out if c_out is None else c_out
        mid = c_in if e == 1 else int(round(c_in * e))
        pairs = [] if e == 1 else [(layers.pop(0), self.expand.weight[:mid, :c_in], self.expand_bn, mid)]
        pairs.append((layers.pop(0), self.dw_weight(k, mid), self.dw_bn, mid))
        pairs.append((layers.pop(0), self.project.weight[:c_out, :mid], self.project_bn, c_out))
        for unit, weight, bn, c in pairs:
            conv, dst_bn = unit[0], unit[1]
            conv.weight.copy_(weight)
            dst_bn.weight.copy_(bn.weight[:c])
            dst_bn.bias.copy_(bn.bias[:c])
            dst_bn.running_mean.copy_(bn.running_mean[:c])
            dst_bn.running_var.copy_(bn.running_var[:c])
            dst_bn.num_batches_tracked.copy_(bn.num_batches_tracked)


class MBV2SupernetModule(nn.Module):
    """The shared weights; ``forward(x, config)`` runs one subnet."""

    def __init__(self, space: MBV2Space, kernel_transform: bool = True) -> None:
        super().__init__()
        o = space.options
        spec = space.to_network(space.validate([0] * len(space.decisions)))  # head/tail: any arch
        head, tail = spec.nodes[:2], spec.nodes[-4:]
        self.head = nn.ModuleList(build_primitive(p).train() for p in head)
        self.tail = nn.ModuleList(build_primitive(p).train() for p in tail)
        self.stages = nn.ModuleList()
        c = space.c_first
        for s, (_, stride) in enumerate(STAGES):
            blocks = nn.ModuleList()
            for b in range(space.max_depth):
                blocks.append(ElasticMBConv(c, space.c_stages[s], stride if b == 0 else 1, o.expansions, o.kernels,
                                            o.act, kernel_transform))
                c = space.c_stages[s]
            self.stages.append(blocks)

    def forward(self, x: torch.Tensor, config: SubnetConfig) -> torch.Tensor:
        for m in self.head:
            x = m(x)
        for blocks, choices in zip(self.stages, config):
            for block, (e, k) in zip(blocks, choices):
                x = block(x, e, k)
        for m in self.tail:
            x = m(x)
        return x


class SubnetCandidate(nn.Module):
    """One architecture running on the shared weights; gradients reach the supernet."""

    def __init__(self, supernet: nn.Module, config: Any, arch: Arch) -> None:
        super().__init__()
        self.supernet = supernet
        self.config = config
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.config)


@dataclass(frozen=True)
class ElasticOptions:
    """Options of the elastic (OFA-style) supernets."""

    kernel_transform: bool = opt(True, help="learn a k*k transform for each smaller kernel (OFA); "
                                            "false = plain centre crop")


class SupernetBase(WeightsManager):
    """What both supernets share: torch state, candidates, export, extreme archs."""

    module: nn.Module
    space: SearchSpace

    def parameters(self) -> Any:
        return self.module.parameters()

    def config_of(self, arch: Arch) -> Any:
        raise NotImplementedError

    def assemble_candidate(self, rollout: Rollout) -> SubnetCandidate:
        arch = self.space.validate(rollout.arch)
        cand = SubnetCandidate(self.module, self.config_of(arch), arch)
        rollout.candidate = cand
        return cand

    def export_subnet(self, arch: Arch) -> nn.Module:
        """A standalone builders.Network of ``space.to_network(arch)`` holding the
        subnet's weights (eval mode); it no longer shares storage with the supernet."""
        arch = self.space.validate(arch)
        net = build_network(self.space.to_network(arch))
        self._export_into(net, arch)
        return net

    def stage_choices(self, arch: Arch) -> list[list[tuple[int, int]]]:
        """Per elastic stage, the (expansion, kernel) of each block that runs."""
        raise NotImplementedError

    def _export_into(self, net: nn.Module, arch: Arch) -> None:
        """Copy the fixed head (first two nodes) and tail (last four) state dicts, then slice
        each running elastic block into the exported network's block, in order."""
        nodes = list(net.nodes)  # type: ignore[attr-defined]
        head, tail, middle = nodes[:2], nodes[-4:], nodes[2:-4]
        for dst, src in zip(head + tail, list(self.module.head) + list(self.module.tail)):
            dst.load_state_dict(src.state_dict())
        it = iter(middle)
        for blocks, choices in zip(self.module.stages, self.stage_choices(arch)):
            for block, (e, k) in zip(blocks, choices):
                block.export_into(next(it), e, k)

    def extreme_arch(self, which: str) -> Arch:
        """Largest (``max``) or smallest (``min``) subnet, for the sandwich rule. Only numeric
        choices (kernel, expansion, depth, width) have an order of size: op names (fbnet's
        ``k3_e1``, ``skip``) have none, and their text order would pick nonsense."""
        unordered = [d.name for d in self.space.decisions
                     if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in d.choices)]
        if unordered:
            raise ConfigError(f"sandwich sampling needs the largest and the smallest subnet, but space "
                              f"{self.space.name!r} has decisions without an order of size ({unordered[0]}, ...): "
                              f"use uniform sampling")
        return tuple(int(d.choices.index(max(d.choices) if which == "max" else min(d.choices)))
                     for d in self.space.decisions)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.module.state_dict())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(dict(state))


@register("weights_manager", "supernet")
class MBV2Supernet(SupernetBase):
    """OFA-style elastic supernet for mbv2 (kernel, expansion, depth share weights)."""

    supernet_for = ("mbv2",)

    Options = ElasticOptions

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, MBV2Space)

    def __init__(self, options: ElasticOptions | None = None, *, space: SearchSpace, seed: int = 0,
                 **_: Any) -> None:
        self.check_space(type(space))
        self.options = options or ElasticOptions()
        self.space = space
        torch.manual_seed(seed)
        self.module = MBV2SupernetModule(space, self.options.kernel_transform)

    def config_of(self, arch: Arch) -> SubnetConfig:
        return self.space.stage_choices(arch)  # type: ignore[attr-defined]

    def stage_choices(self, arch: Arch) -> list[list[tuple[int, int]]]:
        return self.config_of(arch)

