"""Contract suite of the ``trainer`` role (see hwnas/search/trainers/base.py).

The promise users rely on: a search killed and started again in its run directory
ends exactly where an uninterrupted one ends. The suite runs the example config for
its full ``steps`` (or the option named by the class attribute ``steps_option``,
e.g. ``epochs``) in one directory, and for half the steps then the full steps in
another (fresh components each time, as a new process would build them), and compares
the summaries and, where the trainer keeps one, the rollout history.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.config import RunConfig
from hwnas.errors import HwnasError
from hwnas.search.trainers.base import Trainer
from hwnas.testing._common import ContractError, component, expect
from hwnas.testing._search import example_config

ROLE = "trainer"
#: Summary keys every trainer returns (the contract) and those that legitimately differ.
REQUIRED = ("steps", "rollouts", "best", "pareto")
VOLATILE = ("seconds", "resumed_at", "run_dir")


def run(name: str, cfg: RunConfig, run_dir: Path) -> tuple[dict[str, Any], Any]:
    """Build every component afresh and run the trainer in ``run_dir``."""
    from hwnas.search.build import build_component, build_components, trainer_config

    try:
        comps = build_components(cfg)
        trainer = build_component(trainer_config(cfg), components=comps, run_dir=run_dir, seed=cfg.seed)
        expect(isinstance(trainer, Trainer), ROLE, name, "must subclass hwnas.search.trainers.base.Trainer")
        summary = trainer.run()
    except HwnasError as exc:
        raise ContractError(f"{ROLE} {name!r}: running its example fails: {exc}") from None
    expect(isinstance(summary, dict) and all(k in summary for k in REQUIRED), ROLE, name,
           f"run() must return a summary with {', '.join(REQUIRED)}, got {summary!r}")
    history = getattr(trainer, "history", None)
    return summary, [r.to_dict() for r in history] if history is not None else None


def check(name: str, tmp_dir: Path | Any) -> None:
    """Full run vs. half run + resume: the same summary and history."""
    tmp_dir = Path(tmp_dir)
    cfg = example_config(ROLE, name, tmp_dir)
    key = getattr(component(ROLE, name), "steps_option", "steps")  # e.g. epochs of a differentiable search
    steps = getattr(cfg[ROLE].options, key, None)
    expect(isinstance(steps, int) and steps >= 2, ROLE, name,
           f"its options must include {key} (>= 2 in the example), got {steps!r}")
    full, full_history = run(name, cfg, tmp_dir / "unbroken")
    expect(full["steps"] == steps, ROLE, name, f"a run of {key}={steps} reports {full['steps']} steps")
    expect(full["rollouts"] > 0 and full["best"] is not None, ROLE, name, "a run must evaluate rollouts")
    stop = getattr(component(ROLE, name), "interrupt_option", None)  # stops a run without changing it
    half = example_config(ROLE, name, tmp_dir, **{stop or key: steps // 2})
    run(name, half, tmp_dir / "resumed")
    resumed, resumed_history = run(name, cfg, tmp_dir / "resumed")
    same = {k: v for k, v in full.items() if k not in VOLATILE} == \
        {k: v for k, v in resumed.items() if k not in VOLATILE}
    expect(same, ROLE, name, f"a run resumed after {steps // 2} of {steps} steps must end like an unbroken one")
    expect(full_history == resumed_history, ROLE, name, "a resumed run's history must equal an unbroken run's")
