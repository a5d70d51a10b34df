"""Several objectives as one: named weights for task rewards, hardware modes as modifiers.

The reward is ``sum(weight * reward)`` over the children in ``report`` mode (e.g.
accuracy, or accuracy minus a weighted latency), after which every child in
``constraint`` or ``penalty`` mode modifies that sum (a budget, a MnasNet factor).
All children see the merged perfs, so a penalty can read the accuracy another child
measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.config import opt, parse_component
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import SearchSpace


def _split_child(i: int, item: Any) -> tuple[str, float, dict[str, Any]]:
    if not isinstance(item, Mapping):
        raise ConfigError(f"objectives[{i}]: expected a mapping with 'type', got {item!r}")
    data = dict(item)
    weight = data.pop("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ConfigError(f"objectives[{i}].weight: expected a number, got {weight!r}")
    name = data.pop("name", None) or str(data.get("type", f"objective{i}"))
    return str(name), float(weight), data


@register("objective", "composite")
class CompositeObjective(Objective):
    """Several objectives with named weights; constraint / penalty children modify the sum."""

    @dataclass(frozen=True)
    class Options:
        objectives: list[Any] = opt([], help="children: [{type: classification, weight: 1.0}, "
                                             "{type: hardware, mode: constraint, budget: 5, ...}]")

        def check(self) -> None:
            if not self.objectives:
                raise ConfigError("objectives: give at least one child objective")
            names = []
            for i, item in enumerate(self.objectives):
                name, _, data = _split_child(i, item)
                if data.get("type") == "composite":
                    raise ConfigError(f"objectives[{i}].type: composites do not nest")
                try:
                    parse_component(f"objectives[{i}]", data, role="objective")
                except ConfigError as exc:
                    raise ConfigError(str(exc)) from None
                names.append(name)
            if len(set(names)) != len(names):
                raise ConfigError(f"objectives: child names must differ (set name:), got {names}")

    def __init__(self, options: Any, *, space: SearchSpace, base_dir: Path | None = None, **extra: Any) -> None:
        self.options = options
        self.space = space
        self.children: list[tuple[str, float, Objective]] = []
        for i, item in enumerate(options.objectives):
            name, weight, data = _split_child(i, item)
            comp = parse_component(f"objective.objectives[{i}]", data, base_dir, role="objective")
            self.children.append((name, weight, comp.build(space=space, base_dir=base_dir, **extra)))
        self.perf_names = tuple(dict.fromkeys(n for _, _, c in self.children for n in c.perf_names))

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        merged: list[dict[str, float]] = [{} for _ in rollouts]
        for _, _, child in self.children:
            for m, p in zip(merged, child.perfs(rollouts, candidates)):
                m.update(p)
        return merged

    def cheap_perfs(self, rollouts: Sequence[Rollout]) -> list[dict[str, float]]:
        """Merged perfs of the children that need no trained candidate (hardware)."""
        merged: list[dict[str, float]] = [{} for _ in rollouts]
        for _, _, child in self.children:
            cheap = getattr(child, "cheap_perfs", None)
            if callable(cheap):
                for m, p in zip(merged, cheap(rollouts)):
                    m.update(p)
        return merged

    def reward(self, perfs: Mapping[str, float]) -> float:
        for _, _, c in self.children:  # a broken constraint decides alone (no task perfs needed)
            if getattr(c, "is_modifier", False) and not getattr(c, "feasible", lambda p: True)(perfs):
                return float(c.apply(0.0, perfs))  # type: ignore[attr-defined]
        plain = [(w, c) for _, w, c in self.children if not getattr(c, "is_modifier", False)]
        mods = [c for _, _, c in self.children if getattr(c, "is_modifier", False)]
        if not plain:
            return mods[0].reward(perfs) if len(mods) == 1 else sum(c.reward(perfs) for c in mods)
        base = sum(w * c.reward(perfs) for w, c in plain)
        for c in mods:
            base = c.apply(base, perfs)  # type: ignore[attr-defined]
        return float(base)

    def feasible(self, perfs: Mapping[str, float]) -> bool:
        return all(getattr(c, "feasible", lambda p: True)(perfs) for _, _, c in self.children)

    def directions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for _, _, c in self.children:
            out.update(c.directions())
        return out

    def child(self, name: str) -> Objective:
        for n, _, c in self.children:
            if n == name:
                return c
        raise ConfigError(f"objective: no child named {name!r}; children: {', '.join(n for n, _, _ in self.children)}")
