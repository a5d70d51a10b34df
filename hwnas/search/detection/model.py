"""DetNAS-style shared weights: an mbv2 / mbv3 / fbnet supernet backbone with one SSDLite head.

:class:`DetSupernet` runs any subnet of the backbone space through the shared head;
:meth:`DetSupernet.candidate` binds an architecture (a :class:`~.ssd.Detector` whose
parameters are the supernet's, so scoring and training reach the shared weights) and
:meth:`DetSupernet.export` gives a standalone detector: the backbone exported by the
supernet weights manager (the same network the profilers time; fbnet's chain supernet
is copied op by op, see :mod:`.backbone`) plus a copy of the head.
:func:`detector_primitives` lists what runs in a derived detector, backbone and head,
which is what the hardware pricing sums.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.primitives import Primitive
from hwnas.search.detection.backbone import (
    ChainFeatures,
    MixedChainFeatures,
    SupernetFeatures,
    export_fbnet_features,
    feature_channels,
    feature_strides,
    is_fbnet,
    run_nodes,
    stage_config,
    tail_keep,
)
from hwnas.search.detection.ssd import Detector, HeadOptions, build_head, head_primitives, map_sizes


class BoundFeatures(nn.Module):
    """The supernet's feature extractor with one architecture's configuration bound."""

    def __init__(self, features: SupernetFeatures | MixedChainFeatures, config: Any) -> None:
        super().__init__()
        self.features = features
        self.config = config

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.features(x, self.config)


class DetSupernet(nn.Module):
    """Shared backbone supernet (an mbv2 / mbv3 supernet's module, or fbnet's ``diff_supernet``
    chain run one op per layer) + SSDLite head."""

    def __init__(self, weights_manager: Any, num_classes: int, resolution: int, head: HeadOptions) -> None:
        super().__init__()
        if not isinstance(getattr(weights_manager, "module", None), nn.Module):
            raise ConfigError(f"weights_manager.type: detection needs a shared-weights supernet, got "
                              f"{type(weights_manager).__name__}")
        self.wm = weights_manager
        self.space = weights_manager.space
        self.options = head
        self.keep = tail_keep(self.space)
        self.features: SupernetFeatures | MixedChainFeatures = (
            MixedChainFeatures(weights_manager.module, self.space, resolution) if is_fbnet(self.space)
            else SupernetFeatures(weights_manager.module, self.keep))
        self.head, priors = build_head(feature_channels(self.space), feature_strides(self.space), resolution,
                                       num_classes, head)
        self.register_buffer("priors", priors, persistent=False)

    def forward(self, x: torch.Tensor, config: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.features(x, config))

    def candidate(self, arch: Sequence[int]) -> Detector:
        """A detector running ``arch`` on the shared weights."""
        config = self.wm.config_of(self.space.validate(tuple(arch)))
        return Detector(BoundFeatures(self.features, config), self.head, self.priors, self.options)

    def export(self, arch: Sequence[int]) -> Detector:
        """A standalone detector of ``arch`` holding copies of the shared weights (eval mode)."""
        arch = self.space.validate(tuple(arch))
        if is_fbnet(self.space):
            backbone = export_fbnet_features(self.wm, arch)
        else:
            depths = [len(c) for c in stage_config(self.wm.config_of(arch))]
            backbone = ChainFeatures(self.wm.export_subnet(arch), depths, self.keep)
        det = Detector(backbone, copy.deepcopy(self.head), self.priors.clone(), self.options)
        return det.eval()


def detector_primitives(space: Any, arch: Sequence[int], num_classes: int, resolution: int,
                        head: HeadOptions) -> list[Primitive]:
    """Backbone primitives that run (the space's network up to its last 1x1 conv: no pool,
    no classifier) followed by the head's extra layers and predictors."""
    nodes = list(space.to_network(space.validate(tuple(arch))).nodes)
    backbone = nodes[: run_nodes(space, len(nodes))]
    sizes = map_sizes(resolution, feature_strides(space), len(head.extra_channels))
    extras, preds = head_primitives(feature_channels(space), sizes, num_classes, head)
    return backbone + [p for e in extras for p in e] + [p for t in preds for p in t]
