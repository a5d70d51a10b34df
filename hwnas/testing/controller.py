"""Contract suite of the ``controller`` role (see hwnas/search/controllers/base.py).

The controller is driven on its example space with a deterministic two-perf objective
(a score to maximise, a cost to minimise) in which every third rollout is infeasible,
then saved through the trainer's checkpoint files and restored into a controller built
with another seed: from there both must propose exactly the same rollouts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.search.controllers.base import Controller
from hwnas.search.rollout import Rollout
from hwnas.testing._common import ContractError, expect
from hwnas.testing._search import Parts, example_config
from hwnas.testing._search import build as build_parts

ROLE = "controller"
#: Directions of the suite's perfs, given to controllers that take them.
DIRECTIONS = {"score": "max", "cost": "min"}
#: Reward of an infeasible rollout (as the hardware objective's constraint mode gives).
INFEASIBLE = -1e6


def build(name: str, parts: Parts, seed: int) -> Controller:
    from hwnas.search.build import build_component

    ctrl = build_component(parts.config[ROLE], space=parts.space, seed=seed)
    expect(isinstance(ctrl, Controller), ROLE, name, "must subclass hwnas.search.controllers.base.Controller")
    set_dirs = getattr(ctrl, "set_directions", None)
    if callable(set_dirs):
        set_dirs(dict(DIRECTIONS))
    return ctrl


def evaluate(parts: Parts, rollouts: Sequence[Rollout]) -> None:
    """Deterministic perfs from the one-hot encoding; every third rollout is infeasible."""
    for r in rollouts:
        code = parts.space.encode(r.arch)
        weights = np.linspace(0.0, 1.0, len(code))
        score = float(code @ weights) / max(len(r.arch), 1)
        cost = float(code @ weights[::-1]) + 1.0
        r.perfs = {"score": score, "cost": cost}
        r.reward = INFEASIBLE - cost if sum((i + 1) * a for i, a in enumerate(r.arch)) % 3 == 0 else score


def check_sample(name: str, parts: Parts, ctrl: Controller, n: int) -> list[Rollout]:
    rs = ctrl.sample(n)
    expect(isinstance(rs, list) and len(rs) == n and all(isinstance(r, Rollout) for r in rs), ROLE, name,
           f"sample({n}) must return a list of {n} Rollouts, got {rs!r}")
    expect(len({id(r) for r in rs}) == n and all(not r.perfs and r.reward is None for r in rs), ROLE, name,
           "sample() must return fresh rollouts with empty perfs and no reward")
    for r in rs:
        try:
            ok = parts.space.validate(r.arch) == tuple(r.arch)
        except Exception as exc:
            raise ContractError(f"{ROLE} {name!r}: sample() gave an arch the space refuses: {exc}") from None
        expect(ok, ROLE, name, f"sample() must give archs as tuples of ints, got {r.arch!r}")
    return rs


def drive(name: str, parts: Parts, ctrl: Controller, rounds: int) -> None:
    """Rounds of sample -> evaluate -> step, plus a step over two samples at once and one
    over a subset (a controller must not rely on one step per sample)."""
    for _ in range(rounds):
        rs = check_sample(name, parts, ctrl, 2)
        evaluate(parts, rs)
        ctrl.step(rs)
    rs = check_sample(name, parts, ctrl, 1) + check_sample(name, parts, ctrl, 2)
    evaluate(parts, rs)
    ctrl.step(rs[:2])
    ctrl.step(rs[2:])


def restored(name: str, parts: Parts, ctrl: Controller, tmp_dir: Path, seed: int) -> Controller:
    """A controller of another seed loaded from ``ctrl``'s state, via checkpoint files."""
    from hwnas.search.trainers.checkpoint import load_checkpoint, save_checkpoint

    folder = tmp_dir / f"controller-{name}"
    try:
        save_checkpoint(folder, {"controller": ctrl.state_dict()}, 0)
    except Exception as exc:
        raise ContractError(f"{ROLE} {name!r}: state_dict() cannot be checkpointed (JSON and tensors only): "
                            f"{exc}") from None
    state = load_checkpoint(folder)
    other = build(name, parts, seed + 1)
    other.load_state_dict(state["controller"] if state else {})
    return other


def same_proposals(a: Controller, b: Controller, parts: Parts, n: int) -> bool:
    """Both propose the same archs, then again after learning from the same rewards."""
    ra, rb = a.sample(n), b.sample(n)
    if [r.arch for r in ra] != [r.arch for r in rb]:
        return False
    evaluate(parts, ra)
    evaluate(parts, rb)
    a.step(ra)
    b.step(rb)
    return [r.arch for r in a.sample(n)] == [r.arch for r in b.sample(n)]


def check(name: str, tmp_dir: Path) -> None:
    """Valid samples, infeasible rewards accepted, seeded, restored from its state dict."""
    cfg = example_config(ROLE, name, tmp_dir)
    parts = build_parts(cfg, controller=False)
    seed = cfg.seed
    check_sample(name, parts, build(name, parts, seed), 3)
    ctrl = build(name, parts, seed)
    expect(same_proposals(ctrl, build(name, parts, seed), parts, 3), ROLE, name,
           "two controllers built with the same seed must propose the same rollouts")
    drive(name, parts, ctrl, rounds=6)
    other = restored(name, parts, ctrl, tmp_dir, seed)
    expect(same_proposals(ctrl, other, parts, 4), ROLE, name,
           "a controller restored from state_dict() must propose what the original proposes")

