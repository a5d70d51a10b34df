"""Feature maps of the ``mbv2`` / ``mbv3`` / ``fbnet`` backbones, for the supernet and for exported subnets.

The classification networks end in pooling and a classifier; a detector needs the maps
before that. Rather than change the builders, the taps are read by walking the same
modules in the same order: the supernet's ``head`` / ``stages`` / ``tail`` lists
(:class:`SupernetFeatures`) or an exported chain's nodes (:class:`ChainFeatures`), so a
classifier built from the space computes exactly what it did before. Taps follow SSDLite
on MobileNetV2 at a coarser grain: the ends of stages 2 and 4 (strides 8 and 16) and the
last 1x1 convolution at stride 32 (mbv2: the last block and its 1x1 conv; mbv3: the final
expand conv); the pooling, feature-mix and classifier nodes are never run. Both spaces
end in four tail nodes after two head nodes, which is what the taps rely on.

``fbnet`` (HW-NAS-Bench's CIFAR layout: stem at stride 1, the last map at stride 8) has
no shared-weights supernet of its own; its ``diff_supernet`` (a chain of mixed layers,
each candidate built by the same builders as the exported network) runs one op per layer
under a discrete plan, which is a single-path supernet as DetNAS trains.
:class:`MixedChainFeatures` taps that chain and :func:`export_fbnet_features` copies the
chosen ops into the space's own network. As SSDLite does on MobileNetV2, two backbone
maps feed the head: the last layer before the final downsampling and the last 1x1 conv
(strides 4 and 8 of the fbnet layout: 112 and ``head_channels`` channels).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.nn.builders import build_network
from hwnas.search.spaces.differentiable import MixedLayer
from hwnas.search.weights.mixed import MixedChainModule, run_item

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
    if is_fbnet(space):
        return 2  # the 1x1 conv to head_channels, then pool and classifier (as mbv2's last two)
    raise ConfigError(f"search_space.type: detection needs a backbone space exposing feature maps (mbv2, mbv3, "
                      f"fbnet), got {type(space).__name__}")


def is_fbnet(space: Any) -> bool:
    """An fbnet-like chain: stem, ``layers`` (c_in, c_out, stride, res), 1x1 conv, pool, fc."""
    return (hasattr(space, "layers") and hasattr(space, "final") and not hasattr(space, "c_stages")
            and callable(getattr(space, "mixed_chain", None)))


def fbnet_tap(space: Any) -> tuple[int, int, int]:
    """(layer index, its stride, the final stride): the last layer before the final downsampling."""
    strides, s = [], 1
    for _, _, stride, _ in space.layers:
        s *= stride
        strides.append(s)
    downs = [i for i, layer in enumerate(space.layers) if layer[2] > 1]
    if not downs or downs[-1] == 0:
        raise ConfigError("search_space: fbnet's layers never downsample; detection needs two map sizes")
    return downs[-1] - 1, strides[downs[-1] - 1], strides[-1]


def run_nodes(space: Any, n_nodes: int) -> int:
    """How many of the space's network nodes a detector runs (all but pooling and classifier,
    and mbv3's feature-mix)."""
    return n_nodes - 2 if is_fbnet(space) else n_nodes - 4 + tail_keep(space)


def feature_channels(space: Any) -> list[int]:
    """Channels of the tapped maps of an mbv2 / mbv3 / fbnet space."""
    if is_fbnet(space):
        return [space.layers[fbnet_tap(space)[0]][1], space.options.head_channels]
    last = space.c_final if tail_keep(space) == 1 else space.c_head
    return [space.c_stages[s] for s, _ in STAGE_TAPS] + [last]


def feature_strides(space: Any = None) -> list[int]:
    """Strides of the tapped maps (no space: the mbv2 / mbv3 layout)."""
    if space is not None and is_fbnet(space):
        _, tap, last = fbnet_tap(space)
        return [tap, last]
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
        if not all(hasattr(supernet, k) for k in ("head", "stages", "tail")):
            raise ConfigError(f"weights_manager.type: detection on mbv2 / mbv3 taps the elastic supernet (supernet, "
                              f"mbv3_supernet), got a {type(supernet).__name__}")
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

    def __init__(self, network: nn.Module, depths: Sequence[int], keep: int = 2,
                 taps: Sequence[int] | None = None) -> None:
        super().__init__()
        nodes = list(network.nodes)  # type: ignore[attr-defined]
        self.nodes = nn.ModuleList(nodes[: len(nodes) - 4 + keep])
        ends, at = {}, 2
        for s, d in enumerate(depths):
            at += d
            ends[s] = at - 1
        self.taps = set(taps) if taps is not None else {ends[s] for s, _ in STAGE_TAPS}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, node in enumerate(self.nodes):
            x = node(x)
            if i in self.taps:
                feats.append(x)
        return feats + [x]


class MixedChainFeatures(nn.Module):
    """``forward(x, plan)``: the tapped maps of fbnet's mixed-chain supernet under one plan
    (a discrete plan runs each layer's chosen op; architecture weights mix as the chain does)."""

    def __init__(self, chain: nn.Module, space: Any, resolution: int) -> None:
        super().__init__()
        if not isinstance(chain, MixedChainModule) or not is_fbnet(space):
            raise ConfigError(f"weights_manager.type: detection on fbnet taps its diff_supernet (a mixed chain), got "
                              f"{type(chain).__name__} for {type(space).__name__}")
        if space.options.resolution != resolution:  # the priced primitives are the space's, at its resolution
            raise ConfigError(f"search_space.resolution: {space.options.resolution} differs from the detector's "
                              f"input resolution {resolution} (dataset.resolution); set both the same")
        self.chain = chain
        self.n_run = run_nodes(space, len(chain.items))
        self.tap = fbnet_tap(space)[0] + 1  # node 0 is the stem

    def forward(self, x: torch.Tensor, plan: Any) -> list[torch.Tensor]:
        feats = []
        for i, (it, mod) in enumerate(zip(self.chain.items[: self.n_run], self.chain.layers)):
            x = run_item(it, mod, x, plan)
            if i == self.tap:
                feats.append(x)
        return feats + [x]


def export_fbnet_features(weights_manager: Any, arch: Sequence[int]) -> ChainFeatures:
    """The fbnet network of ``arch`` (``space.to_network``, what the profilers time) holding
    copies of the chain supernet's chosen ops, cut and tapped as :class:`MixedChainFeatures`."""
    space, chain = weights_manager.space, weights_manager.module
    arch = space.validate(tuple(arch))
    net = build_network(space.to_network(arch))
    plan = weights_manager.config_of(arch)
    nodes = list(net.nodes)  # type: ignore[attr-defined]
    for node, it, mod in zip(nodes[: run_nodes(space, len(nodes))], chain.items, chain.layers):
        src = mod[plan.choices[it.group][it.row]] if isinstance(it, MixedLayer) else mod
        node.load_state_dict(src.state_dict())
    return ChainFeatures(net, [], keep=2, taps=[fbnet_tap(space)[0] + 1]).eval()
