"""The ``morphism_evolution`` controller: grow networks by morphisms, fine-tune, select.

LEMONADE / NASH-style: start from small networks, and make each child by applying
function-preserving morphisms (widen a block, deepen a stage, grow a kernel) to a
tournament winner of an aging population. The child names its parent in
``rollout.info["parent"]``, so the ``morphism`` weights manager builds it from the
parent's trained weights and the evaluator (``tune`` with a few steps) only fine-tunes
it. With a hardware objective in the reward, selection decides whether growing paid
off. The first ``population`` rollouts are the smallest architecture grown by a few
random morphisms each (fresh weights: they have no evaluated parent yet).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.controllers.simple import AgingPopulation
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.weights.morphism import growth_mutations


@register("controller", "morphism_evolution")
class MorphismEvolutionController(AgingPopulation, Controller):
    """Aging evolution whose mutations are function-preserving morphisms (children name parents)."""

    @dataclass(frozen=True)
    class Options:
        population: int = opt(8, min=2, help="population size; the first `population` rollouts start it")
        sample_size: int = opt(3, min=1, help="tournament size: the best of this many members is the parent")
        morphisms: int = opt(1, min=1, max=16, help="morphisms applied to make one child")
        initial_growth: int = opt(3, min=0, max=64, help="at most this many random morphisms grow the smallest "
                                                          "architecture into each initial member")

        def check(self) -> None:
            if self.sample_size > self.population:
                raise ConfigError(f"sample_size: must be <= population ({self.population}), got {self.sample_size}")

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0) -> None:
        if not isinstance(space, MBV2Space):
            raise ConfigError(f"controller.type: morphism_evolution grows mbv2 architectures by morphisms, got "
                              f"search space {getattr(space, 'registry_name', type(space).__name__)!r}")
        super().__init__(options, space=space, seed=seed)
        self.population: deque[tuple[Arch, float]] = deque()

    def smallest(self) -> Arch:
        """Every decision at its smallest value (fewest blocks, narrowest, smallest kernels)."""
        return self.space.validate([min(range(len(d.choices)), key=lambda i: d.choices[i])
                                    for d in self.space.decisions])

    def grow(self, arch: Arch, times: int) -> tuple[Arch, list[str]]:
        """``arch`` after up to ``times`` random morphisms, and their kinds."""
        kinds = []
        for _ in range(times):
            options = growth_mutations(self.space, arch)  # type: ignore[arg-type]
            if not options:
                break
            kind, arch = options[int(self.rng.integers(len(options)))]
            kinds.append(kind)
        return arch, kinds

    def _tournament(self) -> Arch:
        k = min(self.options.sample_size, len(self.population))
        idx = self.rng.choice(len(self.population), size=k, replace=False)
        best = max(idx, key=lambda i: self.population[int(i)][1])  # first max: deterministic ties
        return self.population[int(best)][0]

    def _initial(self) -> Rollout:
        arch, kinds = self.grow(self.smallest(), int(self.rng.integers(self.options.initial_growth + 1)))
        return Rollout(arch, info={"morphism": "initial"})

    def sample(self, n: int = 1) -> list[Rollout]:
        out = []
        for _ in range(n):
            if len(self.population) < self.options.population:
                out.append(self._initial())
                continue
            parent = self._tournament()
            child, kinds = self.grow(parent, self.options.morphisms)
            if not kinds:  # the parent is the largest architecture: start a new lineage
                out.append(self._initial())
                continue
            out.append(Rollout(child, info={"parent": self.space.to_str(parent), "morphism": "+".join(kinds)}))
        return out

