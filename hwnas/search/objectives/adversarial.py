"""Adversarial objective: robust accuracy of each trained candidate under FGSM / PGD-k.

The attack (:mod:`hwnas.search.robust.attacks`) runs white-box against the candidate in
eval mode, with seeded random starts, so the same candidate always gets the same robust
accuracy. Modes as for fault tolerance: ``report`` (reward = robust accuracy; a Pareto
axis) or ``constraint`` (a floor on robust accuracy in a composite).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.datasets.base import Dataset
from hwnas.search.objectives.fault_tolerance import RobustObjective, eval_batches, need_candidates
from hwnas.search.robust.attacks import AttackOptions, robust_accuracy
from hwnas.search.rollout import Rollout


@register("objective", "adversarial")
class AdversarialObjective(RobustObjective):
    """Accuracy on the adversarial inputs an FGSM or PGD-k attack finds for each candidate."""

    name = "adversarial"
    perf = "robust_accuracy"
    perf_names = ("robust_accuracy",)

    @dataclass(frozen=True)
    class Options:
        attack: AttackOptions = opt(AttackOptions(), help="the attack: method (fgsm|pgd), norm (linf|l2), eps, step, "
                                                          "steps, restarts, random_start, bounds")
        seed: int = opt(0, min=0, help="seed of the random starts")
        split: Literal["train", "valid", "test"] = opt("valid", help="split the candidates are attacked on")
        batch_size: int = opt(256, min=1, help="evaluation batch size")
        max_batches: int = opt(0, min=0, help="attack at most this many batches (0 = the whole split)")
        mode: Literal["report", "constraint"] = opt("report", help="report: reward = robust accuracy; constraint: "
                                                                   "the task reward while robust accuracy >= "
                                                                   "min_accuracy")
        min_accuracy: float = opt(0.0, min=0.0, max=1.0, help="floor of the robust accuracy (constraint mode)")

    def __init__(self, options: Any, *, dataset: Dataset | None = None, runtime: Any = None, **_: Any) -> None:
        self.options = options
        self.dataset = dataset
        self.runtime = runtime

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        cands = need_candidates(self.name, candidates)
        o = self.options
        batches = eval_batches(self, o.split, o.batch_size, o.max_batches)
        return [{"robust_accuracy": robust_accuracy(c, batches, o.attack, seed=o.seed, runtime=self.runtime)}
                for c in cands]
