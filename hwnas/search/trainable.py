"""The module final training trains: the profiled network, plus the recipe's extras.

Cell networks are trained with two things the profiled network does not have (DARTS'
recipe, Liu et al., 2019): *drop-path*, which zeroes whole operation outputs per example
with a probability that grows over training, and an *auxiliary head* after two thirds
of the cells whose loss joins the main loss. Both act in training only, so the trained
module is still the network the profilers time: :class:`TrainableNetwork` is the
builders' :class:`~hwnas.nn.builders.Network` (same node modules, same state-dict
keys) with the extras beside it, and the auxiliary head's weights are simply dropped when
a checkpoint is loaded for testing. Spaces say where the extras go through their
network's meta: ``drop_path_nodes`` and ``aux_node``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.nn.builders import Network, build_network
from hwnas.primitives import NetworkSpec
from hwnas.search.spaces.base import Arch, SearchSpace

AUX_PREFIX = "aux_head."


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier: ReLU, 5x5/3 average pool, 1x1 conv to 128,
    2x2 conv to 768, linear; the pooling and the 2x2 conv shrink for small maps."""

    def __init__(self, c: int, r: int, num_classes: int) -> None:
        super().__init__()
        pool = nn.AvgPool2d(5, 3, 0, count_include_pad=False) if r >= 5 else nn.Identity()
        s = (r - 5) // 3 + 1 if r >= 5 else r
        k = min(2, s)
        self.features = nn.Sequential(
            nn.ReLU(), pool, nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, k, bias=False), nn.BatchNorm2d(768), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each example's ``x`` with probability ``p``, scale the rest by 1 / (1 - p)."""
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), device=x.device).bernoulli_(keep)
    return x / keep * mask


class TrainableNetwork(Network):
    """A builders Network with drop-path on the space's marked nodes and an auxiliary head.

    In training mode it returns ``(logits, aux_logits)`` when the head is on; in eval
    mode just the logits. Set ``drop_path_prob`` before each epoch.
    """

    def __init__(self, spec: NetworkSpec, auxiliary: bool) -> None:
        super().__init__(spec)
        self.drop_nodes = frozenset(int(i) for i in spec.get_meta("drop_path_nodes", ()) or ())
        self.aux_node: int | None = None
        if auxiliary:
            self.aux_node = int(spec.get_meta("aux_node"))
            p = spec.nodes[self.aux_node]
            self.aux_head = AuxiliaryHead(p.c_out, p.out_hw[0], spec.nodes[-1].c_out)
        self.drop_path_prob = 0.0

    def forward(self, x: torch.Tensor) -> Any:
        outs: dict[int, torch.Tensor] = {}
        aux = None
        dropping = self.training and self.drop_path_prob > 0
        for j, mod in enumerate(self.nodes):
            y = self.node_output(j, mod, x, outs)
            if dropping and j in self.drop_nodes:
                y = drop_path(y, self.drop_path_prob)
            outs[j] = y
            if self.training and j == self.aux_node:
                aux = self.aux_head(y)
            for i in self.free_after[j]:
                outs.pop(i, None)
        out = outs[len(self.nodes) - 1]
        return (out, aux) if aux is not None else out


def build_model(space: SearchSpace, arch: Arch, *, auxiliary: bool = False, drop_path: bool = False) -> nn.Module:
    """A freshly initialised module of the architecture: the builders' network, or a
    :class:`TrainableNetwork` when the recipe uses an auxiliary head or drop-path."""
    spec = space.to_network(arch)
    if not auxiliary and not drop_path:
        return build_network(spec)
    if auxiliary and spec.get_meta("aux_node") is None:
        raise ConfigError(f"run.train.auxiliary_weight: networks of space {space.name} have no auxiliary-head "
                          "position (set it to 0)")
    if drop_path and not spec.get_meta("drop_path_nodes"):
        raise ConfigError(f"run.train.drop_path: networks of space {space.name} mark no drop-path nodes (set it to 0)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return TrainableNetwork(spec, auxiliary).eval()


def inference_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A trained state dict without the auxiliary head (what the profiled network holds)."""
    return {k: v for k, v in state.items() if not k.startswith(AUX_PREFIX)}
