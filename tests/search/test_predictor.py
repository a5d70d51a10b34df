"""The GATES-style predictor controller: beats random on real NB201 accuracies, works on
every space's graph, honours a hardware constraint, Pareto mode, warm start, ranking."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from hwnas.config import build_space, parse_options
from hwnas.errors import ConfigError
from hwnas.registry import get
from hwnas.search.objectives.hardware import read_table

from .conftest import DATA, NB201_TABLE, run_controller

ACC = pd.read_csv(DATA / "nb201_accuracy.csv.gz").set_index("arch_str")["cifar10_test_acc"].to_dict()
FAST = {"init": 8, "pool": 200, "mutations": 60, "iters": 20}


def make(space: Any, seed: int, name: str = "predictor", **opts: Any) -> Any:
    cls = get("controller", name)
    return cls(parse_options(cls.Options, {**(FAST if name == "predictor" else {}), **opts}, "controller"),
               space=space, seed=seed)


def test_beats_random_on_nb201_accuracy() -> None:
    space = build_space("nb201")

    def reward(a: tuple[int, ...]) -> float:
        return ACC[space.to_str(a)]

    pred = [run_controller(make(space, s), reward, 40) for s in range(3)]
    rand = [run_controller(make(space, s, "random"), reward, 40) for s in range(3)]
    assert np.mean(pred) > np.mean(rand) + 0.3, (pred, rand)
    assert min(pred) >= 93.5, pred


@pytest.mark.parametrize("space_name", ["mbv2", "fbnet", "toy"])
def test_learns_on_other_spaces(space_name: str) -> None:
    """Reward = sum of choice indices of the network's active decisions: after 30 random-ish
    evaluations the ranker's proposals beat uniform samples."""
    space = build_space(space_name)
    ctrl = make(space, 0, init=10, pool=100, mutations=20)

    def reward(a: tuple[int, ...]) -> float:
        return float(sum(a[i] for i in space.active(a)))

    run_controller(ctrl, reward, 30, batch=5)
    proposed = [reward(r.arch) for r in ctrl.sample(10)]
    rng = np.random.default_rng(0)
    uniform = [reward(space.sample(rng)) for _ in range(200)]
    assert all(space.validate(r.arch) for r in ctrl.sample(3))
    assert np.mean(proposed) > np.percentile(uniform, 75), (np.mean(proposed), np.percentile(uniform, 75))


def test_hardware_constraint_filters_candidates() -> None:
    space = build_space("nb201")
    ctrl = make(space, 0, hardware={"table": str(NB201_TABLE), "column": "gold_6226_ms", "mode": "constraint",
                                    "budget": 7.0})
    lat = read_table(NB201_TABLE, "gold_6226_ms", "arch_str")
    run_controller(ctrl, lambda a: ACC[space.to_str(a)], 20, batch=4)
    proposals = ctrl.sample(10)
    assert all(lat[space.to_str(r.arch)] <= 7.0 for r in proposals)


def test_pareto_mode_spreads_along_latency() -> None:
    space = build_space("nb201")
    ctrl = make(space, 1, pareto=True, target="accuracy",
                hardware={"table": str(NB201_TABLE), "column": "gold_6226_ms"})
    ctrl.set_directions({"accuracy": "max", "latency_ms": "min"})
    lat = read_table(NB201_TABLE, "gold_6226_ms", "arch_str")

    def evaluate(rs: list) -> None:
        for r in rs:
            r.perfs = {"accuracy": ACC[space.to_str(r.arch)], "latency_ms": lat[space.to_str(r.arch)]}
            r.reward = r.perfs["accuracy"]

    for _ in range(4):
        rs = ctrl.sample(5)
        evaluate(rs)
        ctrl.step(rs)
    proposals = ctrl.sample(8)
    lats = sorted(lat[space.to_str(r.arch)] for r in proposals)
    assert len({r.arch for r in proposals}) == 8 and lats[-1] > 1.5 * lats[0], lats
    with pytest.raises(ConfigError, match="target: pareto mode needs"):
        make(space, 0, pareto=True)


def test_warm_start_from_synflow_ranks_before_any_query() -> None:
    space = build_space("nb201", {"channels": 4, "cells_per_stage": 1, "resolution": 8})
    ctrl = make(space, 0, warm_start="synflow", warm_start_samples=24, pool=100, mutations=0)
    first = ctrl.sample(5)
    assert ctrl.fitted and ctrl.warm_done and not ctrl.data
    proxy = get("objective", "synflow")
    obj = proxy(parse_options(proxy.Options, {}, "o"), space=space, seed=0)
    picked = [p["synflow"] for p in obj.perfs(first)]
    rng = np.random.default_rng(5)
    from hwnas.search.rollout import Rollout

    rand = [p["synflow"] for p in obj.perfs([Rollout(space.sample(rng)) for _ in range(20)])]
    assert np.mean(picked) > np.mean(rand), (picked, rand)
    with pytest.raises(ConfigError, match="warm_start: 'hardware' is not a zero-cost proxy"):
        make(space, 0, warm_start="hardware")


def test_ranked_lists_distinct_archs_best_first() -> None:
    space = build_space("nb201")
    ctrl = make(space, 0)
    assert ctrl.ranked(3) == []  # not trained yet
    run_controller(ctrl, lambda a: ACC[space.to_str(a)], 20)
    top = ctrl.ranked(5)
    scores = [s for _, s in top]
    assert len({a for a, _ in top}) == 5 and scores == sorted(scores, reverse=True)
    assert np.mean([ACC[space.to_str(a)] for a, _ in top]) > 92.0
