"""The ``plain`` weights manager: a fresh, freshly initialised network per rollout.

No sharing at all: the honest baseline for train-from-scratch evaluation. The
initialisation is seeded by the run seed and the architecture string, so the same
architecture always starts from the same weights (reproducible, resume-safe) and
assembling never disturbs torch's global random stream.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from hwnas.registry import register
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.weights.base import WeightsManager


def arch_seed(seed: int, space: SearchSpace, arch: Arch) -> int:
    """A 31-bit seed from the run seed and the architecture's canonical string."""
    return (int(seed) * 1_000_003 + zlib.crc32(space.to_str(arch).encode())) % (2 ** 31)


@register("weights_manager", "plain")
class PlainWeightsManager(WeightsManager):
    """A new torch module per rollout (space.to_network -> build_network), seeded init."""

    @dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, options: Any = None, *, space: SearchSpace, seed: int = 0, **_: Any) -> None:
        self.options = options
        self.space = space
        self.seed = int(seed)

    def assemble_candidate(self, rollout: Rollout) -> Any:
        import torch

        from hwnas.nn.builders import build_network

        spec = self.space.to_network(rollout.arch)
        with torch.random.fork_rng():
            torch.manual_seed(arch_seed(self.seed, self.space, rollout.arch))
            model = build_network(spec)
        return model.train()
