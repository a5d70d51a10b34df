"""Random search and regularized (aging) evolution.

Random search is the baseline every other controller must beat at equal budget.
Regularized evolution (Real et al., 2019) keeps a FIFO population: each child is the
mutation of the best of a random tournament, and the *oldest* member dies, which keeps
the search from camping on one lucky early architecture.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace


def valid_reward(r: Rollout) -> bool:
    return r.reward is not None and r.reward == r.reward  # not None, not NaN


@register("controller", "random")
class RandomController(Controller):
    """Uniform random architectures; learns nothing (the baseline)."""

    @dataclass(frozen=True)
    class Options:
        pass

    def sample(self, n: int = 1) -> list[Rollout]:
        return [Rollout(self.space.sample(self.rng)) for _ in range(n)]

    def step(self, rollouts: Sequence[Rollout]) -> None:
        """Random search learns nothing."""

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])


class AgingPopulation:
    """The aging population of evolution controllers (regularised evolution): rewarded rollouts
    join, the oldest leave beyond ``options.population``; saved with the controller's RNG.
    Shared by ``evolution`` and ``morphism_evolution``, which differ only in how a child is made."""

    population: deque[tuple[Arch, float]]
    options: Any

    def step(self, rollouts: Sequence[Rollout]) -> None:
        for r in rollouts:
            if not valid_reward(r):
                continue
            self.population.append((tuple(r.arch), float(r.reward)))  # type: ignore[arg-type]
            while len(self.population) > self.options.population:
                self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state(), "population": [[list(a), r] for a, r in self.population]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])
        self.population = deque((tuple(int(x) for x in a), float(r)) for a, r in state["population"])


@register("controller", "evolution")
class EvolutionController(AgingPopulation, Controller):
    """Regularized (aging) evolution: tournament selection, mutation, the oldest dies."""

    @dataclass(frozen=True)
    class Options:
        population: int = opt(50, min=2, help="population size; the first `population` rollouts are random")
        sample_size: int = opt(10, min=1, help="tournament size: the best of this many members is the parent")
        mutations: int = opt(1, min=1, help="decisions changed per mutation")
        crossover: float = opt(0.0, min=0.0, max=1.0,
                               help="probability that a child crosses two tournament winners before mutating")

        def check(self) -> None:
            if self.sample_size > self.population:
                raise ConfigError(f"sample_size: must be <= population ({self.population}), got {self.sample_size}")

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(options, space=space, seed=seed)
        self.population: deque[tuple[Arch, float]] = deque()

    def _tournament(self) -> Arch:
        k = min(self.options.sample_size, len(self.population))
        idx = self.rng.choice(len(self.population), size=k, replace=False)
        best = max(idx, key=lambda i: self.population[int(i)][1])  # first max: deterministic ties
        return self.population[int(best)][0]

    def sample(self, n: int = 1) -> list[Rollout]:
        out = []
        for _ in range(n):
            if len(self.population) < self.options.population:
                arch = self.space.sample(self.rng)
            else:
                arch = self._tournament()
                if self.options.crossover and self.rng.random() < self.options.crossover:
                    arch = self.space.crossover(arch, self._tournament(), self.rng)
                arch = self.space.mutate(arch, self.rng, self.options.mutations)
            out.append(Rollout(arch))
        return out

