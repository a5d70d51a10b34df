"""Objectives: perfs and reward (task, hardware, composite)."""
from __future__ import annotations

from typing import Any, Mapping

from hwnas.search.objectives import (  # noqa: F401  (register)
    adversarial,
    classification,
    composite,
    detection,
    diff_hardware,
    fault_tolerance,
    hardware,
    language,
    zero_cost,
)


def is_feasible(objective: Any, perfs: Mapping[str, float]) -> bool:
    """Whether perfs meet the objective's constraints (objectives without any: always)."""
    check = getattr(objective, "feasible", None)
    return bool(check(perfs)) if callable(check) else True


__all__ = ["is_feasible"]
