"""Simulated annealing over neighbouring architectures.

A single walker moves to a random neighbour (one active decision changed); worse
moves are accepted with probability ``exp(delta / T)``, and ``T`` decays
geometrically per evaluated rollout from ``t0`` to ``t_min``. Temperatures are in
reward units, so ``t0`` should be about the reward differences one expects between
neighbours (0.01-0.05 for accuracy, about 1 for rewards in milliseconds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.controllers.simple import valid_reward
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace


@register("controller", "annealing")
class AnnealingController(Controller):
    """Simulated annealing: random neighbour moves, Metropolis acceptance, geometric cooling."""

    @dataclass(frozen=True)
    class Options:
        t0: float = opt(1.0, gt=0, help="initial temperature, in reward units")
        cooling: float = opt(0.97, gt=0, max=1.0, help="temperature factor applied after every rollout")
        t_min: float = opt(1e-3, gt=0, help="temperature floor")
        mutations: int = opt(1, min=1, help="decisions changed per move")

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(options, space=space, seed=seed)
        self.current: Arch | None = None
        self.current_reward = -math.inf
        self.temperature = float(options.t0)

    def sample(self, n: int = 1) -> list[Rollout]:
        if self.current is None:
            return [Rollout(self.space.sample(self.rng)) for _ in range(n)]
        return [Rollout(self.space.mutate(self.current, self.rng, self.options.mutations)) for _ in range(n)]

    def step(self, rollouts: Sequence[Rollout]) -> None:
        for r in rollouts:
            if not valid_reward(r):
                continue
            reward = float(r.reward)  # type: ignore[arg-type]
            delta = reward - self.current_reward
            # Always draw, so the random stream does not depend on the branch taken.
            u = self.rng.random()
            if self.current is None or delta >= 0 or u < math.exp(delta / self.temperature):
                self.current, self.current_reward = tuple(r.arch), reward
            self.temperature = max(self.options.t_min, self.temperature * self.options.cooling)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state(), "current": None if self.current is None else list(self.current),
                "current_reward": self.current_reward if self.current is not None else None,
                "temperature": self.temperature}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])
        cur = state.get("current")
        self.current = None if cur is None else tuple(int(x) for x in cur)
        self.current_reward = -math.inf if cur is None else float(state["current_reward"])
        self.temperature = float(state["temperature"])
