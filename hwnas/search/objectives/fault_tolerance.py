"""Fault-tolerance objective: accuracy of each trained candidate under hardware faults.

FTT-NAS-style: the candidate's weights and/or feature maps are corrupted by seeded draws
of the configured fault models (:mod:`hwnas.search.robust.faults`) and the accuracy is
averaged over ``draws``. Why several draws: one draw of a 1e-3 bit-flip rate hits a few
dozen words of a small network, and which ones decides a lot; the mean over draws is
what a fleet of devices sees, the std how much one device may differ.

Modes, as for the hardware objective: ``report`` (reward = fault accuracy; a Pareto axis
with ``directions``), ``constraint`` (a modifier in a composite: the task reward while
``fault_accuracy >= min_accuracy``, every violator below every feasible rollout,
ordered by its shortfall).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.datasets.base import Dataset
from hwnas.search.objectives.base import Objective
from hwnas.search.objectives.hardware import WORST
from hwnas.search.robust.faults import accuracy_under_faults, parse_faults
from hwnas.search.rollout import Rollout
from hwnas.search.training import first_batches


def eval_batches(objective: Any, split: str, batch_size: int, max_batches: int) -> list[Any]:
    """The fixed scoring batches of a robustness objective (the whole split when
    ``max_batches`` is 0); refused in one line without a dataset or candidates."""
    if objective.dataset is None:
        raise ConfigError(f"dataset: the {objective.name} objective needs a dataset section")
    loader = objective.dataset.loader(split, batch_size=batch_size, shuffle=False)
    return first_batches(loader, max_batches) if max_batches else list(loader)


def need_candidates(name: str, candidates: Sequence[Any] | None) -> Sequence[Any]:
    if candidates is None or any(c is None for c in candidates):
        raise ConfigError(f"evaluator: the {name} objective needs trained candidates (use evaluator tune, or a "
                          "shared-weights evaluator)")
    return candidates


class RobustObjective(Objective):
    """Shared modes of the robustness objectives: report or constraint on ``perf``."""

    name = ""
    perf = ""

    def reward(self, perfs: Mapping[str, float]) -> float:
        if self.options.mode == "report":
            return float(perfs[self.perf])
        base = float(perfs["accuracy"]) if "accuracy" in perfs else float(perfs[self.perf])
        return self.apply(base, perfs)

    @property
    def is_modifier(self) -> bool:
        """Constraint mode modifies a task reward instead of adding to it."""
        return self.options.mode == "constraint"

    def feasible(self, perfs: Mapping[str, float]) -> bool:
        """Whether the floor holds; True before the perf is measured (an evaluator asks
        with the cheap perfs alone, to skip candidates a hardware budget rules out)."""
        if self.options.mode != "constraint" or self.perf not in perfs:
            return True
        return float(perfs[self.perf]) >= self.options.min_accuracy

    def apply(self, base: float, perfs: Mapping[str, float]) -> float:
        """The task reward while the floor holds, else below every feasible rollout."""
        v = float(perfs[self.perf])
        if self.options.mode == "constraint" and v < self.options.min_accuracy:
            return WORST - (self.options.min_accuracy - v)
        return base

    def directions(self) -> dict[str, str]:
        return {self.perf: "max"}


@register("objective", "fault_tolerance")
class FaultToleranceObjective(RobustObjective):
    """Accuracy under seeded hardware faults (weights / feature maps), averaged over draws."""

    name = "fault_tolerance"
    perf = "fault_accuracy"
    perf_names = ("fault_accuracy", "fault_accuracy_std")

    @dataclass(frozen=True)
    class Options:
        faults: list[Any] = opt([{"target": "weights", "kind": "bitflip", "rate": 0.001, "format": "int8"}],
                                help="fault models: [{target: weights|features, kind: bitflip|stuck_at_0|stuck_at_1, "
                                     "rate: per-bit probability, format: int8|float32, modules: [conv, linear], "
                                     "layers: {glob: rate}}]")
        draws: int = opt(5, min=1, help="fault draws averaged per candidate")
        seed: int = opt(0, min=0, help="seed of the fault draws (the same draws for every candidate)")
        split: Literal["train", "valid", "test"] = opt("valid", help="split the candidates are scored on")
        batch_size: int = opt(256, min=1, help="evaluation batch size")
        max_batches: int = opt(0, min=0, help="score on at most this many batches (0 = the whole split)")
        mode: Literal["report", "constraint"] = opt("report", help="report: reward = fault accuracy; constraint: "
                                                                   "the task reward while fault accuracy >= min_accuracy")
        min_accuracy: float = opt(0.0, min=0.0, max=1.0, help="floor of the fault accuracy (constraint mode)")

        def check(self) -> None:
            if not self.faults:
                raise ConfigError("faults: give at least one fault model")
            parse_faults(self.faults)

    def __init__(self, options: Any, *, dataset: Dataset | None = None, runtime: Any = None, **_: Any) -> None:
        self.options = options
        self.dataset = dataset
        self.runtime = runtime
        self.faults = parse_faults(options.faults, "objective.faults")

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        import numpy as np

        cands = need_candidates(self.name, candidates)
        o = self.options
        batches = eval_batches(self, o.split, o.batch_size, o.max_batches)
        out = []
        for cand in cands:
            accs = accuracy_under_faults(cand, batches, self.faults, draws=o.draws, seed=o.seed, runtime=self.runtime)
            out.append({"fault_accuracy": float(np.mean(accs)), "fault_accuracy_std": float(np.std(accs))})
        return out
