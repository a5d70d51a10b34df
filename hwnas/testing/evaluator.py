"""Contract suite of the ``evaluator`` role (see hwnas/search/evaluators/base.py).

The trainer calls ``update_evaluator`` then ``evaluate`` and checkpoints the
evaluator's state; the suite does the same on the example config and checks that
rollouts get the objective's perfs and a finite reward, that scoring the same
architectures again gives the same result, and that an evaluator restored from its
state (with its weights manager's) continues exactly like the original.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.search.evaluators.base import Evaluator
from hwnas.search.rollout import Rollout
from hwnas.testing._common import ContractError, expect, finite
from hwnas.testing._search import Parts, build, candidates, example_parts, sample_rollouts

ROLE = "evaluator"


def scored(name: str, parts: Parts, archs: list[tuple[int, ...]]) -> list[tuple[dict[str, float], float]]:
    """Fresh rollouts of ``archs`` evaluated (with candidates when needed): (perfs, reward)."""
    rollouts = [Rollout(a) for a in archs]
    if parts.evaluator.needs_candidates:
        candidates(parts, rollouts)
    parts.evaluator.evaluate(rollouts)
    names = set(parts.objective.perf_names) if parts.objective is not None else set()
    for r in rollouts:
        expect(names <= set(r.perfs) and finite(r.perfs.values()), ROLE, name,
               f"evaluate() must fill finite perfs including {sorted(names)}, got {r.perfs}")
        expect(isinstance(r.reward, float) and finite([r.reward]), ROLE, name,
               f"evaluate() must set a finite float reward, got {r.reward!r}")
    return [(dict(r.perfs), float(r.reward)) for r in rollouts]  # type: ignore[arg-type]


def update(name: str, evaluator: Evaluator) -> None:
    stats = evaluator.update_evaluator(None)
    expect(isinstance(stats, dict) and all(isinstance(k, str) for k in stats) and finite(stats.values()), ROLE, name,
           f"update_evaluator() must return a dict of finite numbers, got {stats!r}")


def restored(name: str, parts: Parts, tmp_dir: Path) -> Parts:
    """The example built again, then loaded with the evaluator's and the weights
    manager's checkpointed states (as a resumed search does)."""
    from hwnas.search.trainers.checkpoint import load_checkpoint, save_checkpoint

    folder = tmp_dir / f"evaluator-{name}"
    state = {"evaluator": parts.evaluator.state_dict(), "weights_manager": parts.weights_manager.state_dict()}
    try:
        save_checkpoint(folder, state, 0)
    except Exception as exc:
        raise ContractError(f"{ROLE} {name!r}: state_dict() cannot be checkpointed: {exc}") from None
    loaded = load_checkpoint(folder) or {}
    other = build(parts.config)
    other.weights_manager.load_state_dict(loaded["weights_manager"])
    other.evaluator.load_state_dict(loaded["evaluator"])
    return other


def check(name: str, tmp_dir: Path | Any) -> None:
    """Update, evaluate, evaluate again, restore, then update and evaluate side by side."""
    tmp_dir = Path(tmp_dir)
    parts = example_parts(ROLE, name, tmp_dir)
    ev = parts.evaluator
    expect(isinstance(ev, Evaluator), ROLE, name, "must subclass hwnas.search.evaluators.base.Evaluator")
    expect(isinstance(ev.needs_candidates, bool), ROLE, name, "needs_candidates must be a bool")
    archs = [r.arch for r in sample_rollouts(parts, 2)]
    update(name, ev)
    first = scored(name, parts, archs)
    expect(scored(name, parts, archs) == first, ROLE, name,
           "evaluating the same architectures again (no update between) must give the same perfs and rewards")
    other = restored(name, parts, tmp_dir)
    expect(scored(name, other, archs) == first, ROLE, name,
           "an evaluator restored from its state must score like the original")
    update(name, ev)
    update(name, other.evaluator)
    expect(scored(name, other, archs) == scored(name, parts, archs), ROLE, name,
           "after one more update_evaluator(), a restored evaluator must score like the original "
           "(its state must hold everything training depends on)")
