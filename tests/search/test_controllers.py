"""Controllers on toy problems with a known optimum, at equal budgets and fixed seeds."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from hwnas.config import parse_options
from hwnas.errors import ConfigError
from hwnas.registry import get
from hwnas.search.controllers.pareto import crowding_distance, non_dominated_sort, pareto_indices
from hwnas.search.rollout import Rollout
from hwnas.search.trainers.checkpoint import decode, encode
from hwnas.testing.fakes import ToySpace

from .conftest import run_controller

SEEDS = range(5)
BUDGET = 300


def make(name: str, space: ToySpace, seed: int, **opts: Any) -> Any:
    cls = get("controller", name)
    return cls(parse_options(cls.Options, opts, "controller"), space=space, seed=seed)


def sum_reward(arch: tuple[int, ...]) -> float:
    return float(sum(arch))


def target_reward(target: tuple[int, ...]):
    return lambda arch: float(sum(a == t for a, t in zip(arch, target)))


TUNED = {"random": {}, "evolution": {"population": 20, "sample_size": 5},
         "annealing": {"t0": 1.0, "cooling": 0.97}, "rl": {"lr": 0.05}}


def mean_best(name: str, reward: Any, batch: int = 1) -> float:
    space = ToySpace(n=12, k=5)
    return float(np.mean([run_controller(make(name, space, s, **TUNED[name]), reward, BUDGET, batch) for s in SEEDS]))


@pytest.mark.parametrize("name,batch", [("evolution", 1), ("annealing", 1), ("rl", 10)])
def test_beats_random_on_sum_of_indices(name: str, batch: int) -> None:
    rnd = mean_best("random", sum_reward)
    got = mean_best(name, sum_reward, batch)
    assert got > rnd + 2, (name, got, rnd)


@pytest.mark.parametrize("name,batch", [("evolution", 1), ("annealing", 1), ("rl", 10)])
def test_beats_random_on_hidden_target(name: str, batch: int) -> None:
    target = tuple(int(x) for x in np.random.default_rng(42).integers(5, size=12))
    rnd = mean_best("random", target_reward(target))
    got = mean_best(name, target_reward(target), batch)
    assert got > rnd + 1, (name, got, rnd)


def test_evolution_finds_hidden_target_exactly() -> None:
    space = ToySpace(n=12, k=5)
    target = tuple(int(x) for x in np.random.default_rng(1).integers(5, size=12))
    best = run_controller(make("evolution", space, 0, population=20, sample_size=5), target_reward(target), 600)
    assert best == 12


def test_pareto_helpers_on_known_matrix() -> None:
    F = np.array([[1, 5], [2, 4], [3, 3], [2, 2], [0, 0], [3, 3]], dtype=float)
    fronts = non_dominated_sort(F)
    assert sorted(fronts[0].tolist()) == [0, 1, 2, 5]
    assert fronts[1].tolist() == [3] and fronts[2].tolist() == [4]
    cd = crowding_distance(F[[0, 1, 2]])
    assert np.isinf(cd[0]) and np.isinf(cd[2]) and np.isfinite(cd[1])
    perfs = [{"acc": 0.9, "lat": 5.0}, {"acc": 0.8, "lat": 2.0}, {"acc": 0.7, "lat": 3.0}]
    assert pareto_indices(perfs, {"acc": "max", "lat": "min"}) == [0, 1]


def test_pareto_recovers_known_front() -> None:
    """Two objectives: count of 0s and count of 3s. The front is exactly the archs made of
    0s and 3s only, with values (a, 6 - a) for a = 0..6."""
    space = ToySpace(n=6, k=4)
    ctrl = make("pareto", space, 0, population=24, perfs=["zeros:max", "threes:max"])
    for _ in range(80):  # 800 evaluations of a 4,096-arch space
        rs = ctrl.sample(10)
        for r in rs:
            r.perfs = {"zeros": float(r.arch.count(0)), "threes": float(r.arch.count(3))}
            r.reward = 0.0
        ctrl.step(rs)
    front = {(int(p["zeros"]), int(p["threes"])) for _, p in ctrl.front()}
    assert front == {(a, 6 - a) for a in range(7)}


def test_pareto_needs_directions() -> None:
    ctrl = make("pareto", ToySpace(n=4, k=3), 0)
    rs = ctrl.sample(2)
    for r in rs:
        r.perfs = {"x": 1.0}
    with pytest.raises(ConfigError, match="perfs"):
        ctrl.step(rs)


def test_evolution_options_checked() -> None:
    with pytest.raises(ConfigError, match=r"controller\.sample_size: must be <= population"):
        make("evolution", ToySpace(), 0, population=5, sample_size=9)
    with pytest.raises(ConfigError, match=r"controller\.population: must be >= 2, got -3"):
        make("evolution", ToySpace(), 0, population=-3)


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """Through the checkpoint encoding: JSON text plus a dict of tensors."""
    tensors: dict[str, Any] = {}
    text = json.dumps(encode(state, tensors))
    return decode(json.loads(text), tensors)


@pytest.mark.parametrize("name", ["random", "evolution", "annealing", "pareto", "rl", "predictor"])
def test_state_roundtrip_continues_identically(name: str) -> None:
    space = ToySpace(n=8, k=4)
    opts = {"pareto": {"population": 10, "perfs": ["score:max"]},
            "predictor": {"init": 5, "pool": 60, "mutations": 10, "iters": 5}}.get(name, TUNED.get(name, {}))
    if name == "evolution":
        opts = {"population": 10, "sample_size": 3}

    def drive(ctrl: Any, steps: int, log: list) -> None:
        for _ in range(steps):
            rs = ctrl.sample(4)
            for r in rs:
                r.reward = sum_reward(r.arch)
                r.perfs = {"score": r.reward}
            ctrl.step(rs)
            log.extend(r.arch for r in rs)

    a, log_a = make(name, space, 7, **opts), []
    drive(a, 12, log_a)
    b, log_b = make(name, space, 7, **opts), []
    drive(b, 5, log_b)
    c = make(name, space, 99, **opts)  # different seed: everything must come from the state
    c.load_state_dict(_roundtrip(b.state_dict()))
    drive(c, 7, log_b)
    assert log_a == log_b


def test_rollout_dict_roundtrip() -> None:
    r = Rollout((1, 2, 3), {"accuracy": 0.5}, 0.5, 4, info={"x": 1})
    assert Rollout.from_dict(json.loads(json.dumps(r.to_dict()))) == r
