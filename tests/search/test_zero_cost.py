"""Zero-cost proxies: deterministic, order-independent, correlated with the real NB201
accuracy on a tiny skeleton, usable as a search reward."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from hwnas import registry
from hwnas.config import build_space, parse_options
from hwnas.search.api import run_search
from hwnas.search.rollout import Rollout

from .conftest import DATA, write_config

ACC = pd.read_csv(DATA / "nb201_accuracy.csv.gz").set_index("arch_str")["cifar10_test_acc"].to_dict()
TINY = {"channels": 4, "cells_per_stage": 1, "resolution": 8}
PROXIES = [e.name for e in registry.list("objective") if getattr(e.obj, "zero_cost", False)]


def proxy(name: str, space: Any, **opts: Any) -> Any:
    cls = registry.get("objective", name)
    return cls(parse_options(cls.Options, {"batch_size": 16, **opts}, "objective"), space=space, seed=0)


@pytest.fixture(scope="module")
def cells() -> tuple[Any, list[tuple[int, ...]]]:
    space = build_space("nb201", TINY)
    rng = np.random.default_rng(0)
    return space, [space.sample(rng) for _ in range(30)]


def test_all_four_are_registered() -> None:
    assert {"synflow", "jacob_cov", "snip", "grad_norm"} <= set(PROXIES)


@pytest.mark.parametrize("name", PROXIES)
def test_deterministic_and_order_independent(name: str, cells: Any) -> None:
    space, archs = cells
    a = [p[name] for p in proxy(name, space).perfs([Rollout(x) for x in archs[:6]])]
    b = [p[name] for p in proxy(name, space).perfs([Rollout(x) for x in archs[:6][::-1]])][::-1]
    assert a == b and all(np.isfinite(a))
    other_init = [p[name] for p in proxy(name, space, init_seed=1).perfs([Rollout(x) for x in archs[:6]])]
    assert other_init != a


@pytest.mark.parametrize("name,floor", [("synflow", 0.6), ("jacob_cov", 0.5), ("snip", 0.3), ("grad_norm", 0.3)])
def test_correlates_with_nb201_accuracy(name: str, floor: float, cells: Any) -> None:
    space, archs = cells
    scores = [p[name] for p in proxy(name, space).perfs([Rollout(x) for x in archs])]
    rho = spearmanr(scores, [ACC[space.to_str(a)] for a in archs]).correlation
    assert rho > floor, rho


def test_synflow_as_cheap_reward(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "zc.yaml", seed=0, search_space={"type": "nb201", **TINY},
                       controller={"type": "evolution", "population": 4, "sample_size": 2},
                       evaluator={"type": "predictor"}, objective={"type": "synflow"},
                       trainer={"type": "simple", "steps": 3, "rollouts_per_step": 4, "plot": False})
    out = run_search(cfg, run_dir=tmp_path / "run")
    assert out["rollouts"] == 12 and out["best"]["reward"] == out["best"]["perfs"]["synflow"]
