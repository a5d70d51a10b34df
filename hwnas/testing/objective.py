"""Contract suite of the ``objective`` role (see hwnas/search/objectives/base.py).

An objective's perfs are stored (CSV, checkpoints), ranked (Pareto fronts use the
directions) and turned into the reward a controller maximises, so the suite asks for
perfs of a few candidates of the example's space and checks names, finiteness,
repeatability, rewards and directions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.search.objectives.base import Objective
from hwnas.testing._common import ContractError, expect, finite
from hwnas.testing._search import candidates, example_parts, sample_rollouts

ROLE = "objective"


def check_perfs(name: str, objective: Objective, perfs: Any, n: int) -> None:
    names = set(objective.perf_names)
    expect(isinstance(perfs, list) and len(perfs) == n, ROLE, name, f"perfs() must return a list of {n} mappings")
    for p in perfs:
        expect(isinstance(p, dict) and set(p) == names, ROLE, name,
               f"perfs must hold exactly perf_names {sorted(names)}, got {sorted(p) if isinstance(p, dict) else p}")
        expect(finite(p.values()), ROLE, name, f"perfs must be finite numbers, got {p}")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Perfs of candidates, twice; rewards; directions; feasibility where declared."""
    parts = example_parts(ROLE, name, Path(tmp_dir))
    objective = parts.objective
    expect(isinstance(objective, Objective), ROLE, name, "must subclass hwnas.search.objectives.base.Objective")
    names = tuple(objective.perf_names)
    expect(names and all(isinstance(n, str) for n in names) and len(set(names)) == len(names), ROLE, name,
           f"perf_names must be distinct strings, got {names!r}")
    rollouts = sample_rollouts(parts, 4)
    assemble = getattr(objective, "assemble_candidates", None)  # objectives that score other networks (detectors)
    cands = assemble(parts.weights_manager, rollouts) if callable(assemble) else candidates(parts, rollouts)
    try:
        perfs = objective.perfs(rollouts, cands)
    except Exception as exc:
        raise ContractError(f"{ROLE} {name!r}: perfs() of its example's candidates failed: {exc}") from exc
    check_perfs(name, objective, perfs, len(rollouts))
    expect(objective.perfs(rollouts, cands) == perfs, ROLE, name, "perfs() must be the same when asked again")
    for p in perfs:
        r = objective.reward(p)
        expect(finite([r]), ROLE, name, f"reward() must be a finite number, got {r!r} for {p}")
        feasible = getattr(objective, "feasible", None)
        if callable(feasible):
            expect(isinstance(feasible(p), bool), ROLE, name, "feasible() must return a bool")
    dirs = objective.directions()
    expect(isinstance(dirs, dict) and set(dirs) <= set(names) and set(dirs.values()) <= {"max", "min"}, ROLE, name,
           f"directions() must map some perf_names to 'max' or 'min', got {dirs!r}")
