"""Feature maps of the ``mbv2`` backbone, for the supernet and for exported subnets.

The classification networks end in pooling and a classifier; a detector needs the maps
before that. Rather than change the builders, the taps are read by walking the same
modules in the same order: the supernet's ``head`` / ``stages`` / ``tail`` lists
(:class:`SupernetFeatures`) or an exported chain's nodes (:class:`ChainFeatures`), so a
classifier built from the space computes exactly what it did before. Taps follow SSDLite
on MobileNetV2 at a coarser grain: the ends of stages 2 and 4 (strides 8 and 16) and the
last 1x1 convolution (stride 32); the pooling and classifier nodes are never run.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from hwnas.errors import ConfigError

#: (stage index whose last block is tapped, stride) for the mbv2 stages; then the last conv.
STAGE_TAPS: tuple[tuple[int, int], ...] = ((1, 8), (3, 16))
LAST_STRIDE = 32
TAIL_KEEP = 2  # tail nodes that run: the last mbconv and the 1x1 conv (pool and fc do not)


def feature_channels(space: Any) -> list[int]:
    """Channels of the tapped maps of an mbv2-family space."""
    if not hasattr(space, "c_stages") or not hasattr(space, "c_head"):
        raise ConfigError(f"search_space.type: detection needs a backbone space exposing feature maps (mbv2), "
                          f"got {type(space).__name__}")
    return [space.c_stages[s] for s, _ in STAGE_TAPS] + [space.c_head]


def feature_strides() -> list[int]:
    return [s for _, s in STAGE_TAPS] + [LAST_STRIDE]


class SupernetFeatures(nn.Module):
    """``forward(x, config)``: the tapped maps of one subnet of an mbv2 supernet module."""

    def __init__(self, supernet: nn.Module) -> None:
        super().__init__()
        self.supernet = supernet

    def forward(self, x: torch.Tensor, config: Sequence[Sequence[tuple[int, int]]]) -> list[torch.Tensor]:
        sn, taps, feats = self.supernet, dict(STAGE_TAPS), []
        for m in sn.head:
            x = m(x)
        for s, (blocks, choices) in enumerate(zip(sn.stages, config)):
            for block, (e, k) in zip(blocks, choices):
                x = block(x, e, k)
            if s in taps:
                feats.append(x)
        for m in list(sn.tail)[:TAIL_KEEP]:
            x = m(x)
        return feats + [x]


class ChainFeatures(nn.Module):
    """The tapped maps of an exported mbv2 chain (``builders.Network``): its nodes run in
    order up to the last 1x1 convolution; ``depths`` are the running blocks per stage."""

    def __init__(self, network: nn.Module, depths: Sequence[int]) -> None:
        super().__init__()
        nodes = list(network.nodes)  # type: ignore[attr-defined]
        self.nodes = nn.ModuleList(nodes[: len(nodes) - 4 + TAIL_KEEP])
        ends, at = {}, 2
        for s, d in enumerate(depths):
            at += d
            ends[s] = at - 1
        self.taps = {ends[s] for s, _ in STAGE_TAPS}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, node in enumerate(self.nodes):
            x = node(x)
            if i in self.taps:
                feats.append(x)
        return feats + [x]
