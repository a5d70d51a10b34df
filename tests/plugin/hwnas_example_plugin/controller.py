"""Controller ``example-hillclimb``: first-improvement hill climbing with random restarts."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.rollout import Rollout


@register("controller", "example-hillclimb")
class HillClimbController(Controller):
    """Mutates the best architecture so far; restarts at random after `patience` misses."""

    @dataclass(frozen=True)
    class Options:
        patience: int = opt(10, min=1, help="rollouts without improvement before a random restart")

    def __init__(self, options: Any, *, space: Any, seed: int = 0) -> None:
        super().__init__(options, space=space, seed=seed)
        self.best: tuple[int, ...] | None = None
        self.best_reward = -math.inf
        self.misses = 0

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        return {"controller": {"type": "example-hillclimb", "patience": 3}}

    def sample(self, n: int = 1) -> list[Rollout]:
        if self.best is None:
            return [Rollout(self.space.sample(self.rng)) for _ in range(n)]
        return [Rollout(self.space.mutate(self.best, self.rng)) for _ in range(n)]

    def step(self, rollouts: Sequence[Rollout]) -> None:
        for r in rollouts:
            if r.reward is None or r.reward != r.reward:
                continue
            if r.reward > self.best_reward:
                self.best, self.best_reward, self.misses = tuple(r.arch), float(r.reward), 0
            else:
                self.misses += 1
        if self.misses >= self.options.patience:
            self.best, self.best_reward, self.misses = None, -math.inf, 0

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state(), "best": None if self.best is None else list(self.best),
                "best_reward": None if self.best is None else self.best_reward, "misses": self.misses}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])
        self.best = None if state["best"] is None else tuple(int(a) for a in state["best"])
        self.best_reward = -math.inf if state["best_reward"] is None else float(state["best_reward"])
        self.misses = int(state["misses"])
