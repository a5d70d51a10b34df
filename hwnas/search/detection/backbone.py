"""Feature maps of the ``mbv2`` / ``mbv3`` backbones, for the supernet and for exported subnets.

The classification networks end in pooling and a classifier; a detector needs the maps
before that. Rather than change the builders, the taps are read by walking the same
modules in the same order: the supernet's ``head`` / ``stages`` / ``tail`` lists
(:class:`SupernetFeatures`) or an exported chain's nodes (:class:`ChainFeatures`), so a
classifier built from the space computes exactly what it did before. Taps follow SSDLite
on MobileNetV2 at a coarser grain: the ends of stages 2 and 4 (strides 8 and 16) and the
last 1x1 convolution at stride 32 (mbv2: the last block and its 1x1 conv; mbv3: the final
expand conv); the pooling, feature-mix and classifier nodes are never run. Both spaces
end in four tail nodes after two head nodes, which is what the taps rely on.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError

#: (stage index whose last block is tapped, stride) of the five elastic stages; then the last conv.
STAGE_TAPS: tuple[tuple[int, int], ...] = ((1, 8), (3, 16))
LAST_STRIDE = 32


def tail_keep(space: Any) -> int:
    """Tail nodes that run before pooling: mbv3 its final expand conv, mbv2 its last block
    and 1x1 conv (one line naming the space when it exposes no feature maps)."""
    if hasattr(space, "c_final") and hasattr(space, "c_stages"):
        res = list(getattr(space.options, "resolutions", []))
        if len(res) != 1:
            raise ConfigError(f"search_space.resolutions: detection needs one fixed resolution, got {res}")
        if getattr(space, "elastic_width", False):
            raise ConfigError("search_space.stage_widths: detection shares one head, whose input channels elastic "
                              "stage widths would change; use [1.0]")
        return 1
    if hasattr(space, "c_head") and hasattr(space, "c_stages"):
        return 2
    raise ConfigError(f"search_space.type: detection needs a backbone space exposing feature maps (mbv2, mbv3), "
                      f"got {type(space).__name__}")


def feature_channels(space: Any) -> list[int]:
    """Channels of the tapped maps of an mbv2 / mbv3 space."""
    last = space.c_final if tail_keep(space) == 1 else space.c_head
    return [space.c_stages[s] for s, _ in STAGE_TAPS] + [last]


def feature_strides() -> list[int]:
    return [s for _, s in STAGE_TAPS] + [LAST_STRIDE]


def stage_config(config: Any) -> Any:
    """Per-stage choices of a supernet configuration (mbv3's is ``(resolution, stages,
    stage channels)``)."""
    if isinstance(config, tuple) and isinstance(config[0], int):
        return config[1]
    return config


def stage_widths(config: Any) -> list[int] | None:
    """mbv3's active output channels per stage (None for mbv2's configuration)."""
    if isinstance(config, tuple) and len(config) == 3 and isinstance(config[0], int):
        return list(config[2])
    return None


class SupernetFeatures(nn.Module):
    """``forward(x, config)``: the tapped maps of one subnet of an mbv2 supernet module."""

    def __init__(self, supernet: nn.Module, keep: int = 2) -> None:
        super().__init__()
        self.supernet = supernet
        self.keep = keep

    def forward(self, x: torch.Tensor, config: Sequence[Sequence[tuple[int, int]]]) -> list[torch.Tensor]:
        sn, taps, feats = self.supernet, dict(STAGE_TAPS), []
        for m in sn.head:
            x = m(x)
        widths = stage_widths(config)
        for s, (blocks, choices) in enumerate(zip(sn.stages, stage_config(config))):
            for block, (e, k) in zip(blocks, choices):
                x = block(x, e, k) if widths is None else block(x, e, k, widths[s])
            if s in taps:
                feats.append(x)
        tail = list(sn.tail)[: self.keep]
        if widths is not None:  # mbv3's final expand reads the last stage's active channels
            final = tail.pop(0)
            x = final[2](final[1](F.conv2d(x, final[0].weight[:, : x.shape[1]])))
        for m in tail:
            x = m(x)
        return feats + [x]


class ChainFeatures(nn.Module):
    """The tapped maps of an exported mbv2 / mbv3 chain (``builders.Network``): its nodes run
    in order up to the last 1x1 convolution (``keep`` tail nodes); ``depths`` are the running
    blocks per stage."""

    def __init__(self, network: nn.Module, depths: Sequence[int], keep: int = 2) -> None:
        super().__init__()
        nodes = list(network.nodes)  # type: ignore[attr-defined]
        self.nodes = nn.ModuleList(nodes[: len(nodes) - 4 + keep])
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
