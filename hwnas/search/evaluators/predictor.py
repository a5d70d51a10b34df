"""The ``predictor`` evaluator: perfs from objectives that need no trained network.

Hardware objectives predict latency / energy from the architecture alone; with no
training in the loop a search runs thousands of rollouts per second, which is what
tests, benchmarks and hardware-only searches (e.g. "fastest cell on this device") need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from hwnas.registry import register
from hwnas.search.evaluators.base import Evaluator
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout


def fill(objective: Objective, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None) -> None:
    """Ask the objective for perfs and reward and store them on the rollouts."""
    for r, p in zip(rollouts, objective.perfs(rollouts, candidates)):
        r.perfs.update(p)
        r.reward = float(objective.reward(r.perfs))


@register("evaluator", "predictor")
class PredictorEvaluator(Evaluator):
    """Perfs straight from the objective (cost models, tables), no candidates, no training."""

    needs_candidates = False

    @dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, options: Any = None, *, objective: Objective, **_: Any) -> None:
        self.options = options
        self.objective = objective

    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        fill(self.objective, rollouts, None)
