"""The table evaluator on the real NAS-Bench-201 accuracy table: perfs, distinct-query
counting (kept across a resume), composite / Pareto objectives, one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hwnas.cli import main
from hwnas.config import parse_component
from hwnas.errors import HwnasError
from hwnas.search.api import SearchOverrides, run_search
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.nb201 import NB201Space

from .conftest import DATA, NB201_TABLE, write_config

ACC_TABLE = DATA / "nb201_accuracy.csv.gz"
TABLE_EVAL = {"type": "table", "table": str(ACC_TABLE), "perfs": {"accuracy": "cifar10_test_acc"}}
LATENCY = {"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms"}


def build(objective: dict[str, Any], **evaluator: Any) -> Any:
    space = NB201Space()
    obj = parse_component("objective", objective).build(space=space)
    return parse_component("evaluator", {**TABLE_EVAL, **evaluator}).build(space=space, objective=obj), space


def test_perfs_reward_and_distinct_queries() -> None:
    ev, space = build({"type": "composite", "objectives": [{"type": "classification"}, {**LATENCY, "weight": 0.0}]},
                      scale={"accuracy": 0.01})
    truth = pd.read_csv(ACC_TABLE).set_index("arch_str")["cifar10_test_acc"]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(5)]
    rollouts = [Rollout(a) for a in archs + archs[:3]]  # 3 repeats: still 5 queries
    ev.evaluate(rollouts)
    assert ev.queries == 5 and ev.summary() == {"queries": 5}
    for r in rollouts:
        assert r.perfs["accuracy"] == pytest.approx(truth[space.to_str(r.arch)] / 100)
        assert r.perfs["latency_ms"] > 0
        assert r.reward == pytest.approx(r.perfs["accuracy"])  # latency weight 0


def test_constraint_objective_reads_table_accuracy() -> None:
    ev, space = build({"type": "composite", "objectives": [
        {"type": "classification"}, {**LATENCY, "mode": "constraint", "budget": 4.0}]})
    rng = np.random.default_rng(1)
    rollouts = [Rollout(space.sample(rng)) for _ in range(30)]
    ev.evaluate(rollouts)
    for r in rollouts:
        if r.perfs["latency_ms"] <= 4.0:
            assert r.reward == r.perfs["accuracy"]
        else:
            assert r.reward < -1e5


def test_search_summary_counts_queries_and_resumes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", seed=1, search_space={"type": "nb201"},
                       controller={"type": "pareto", "population": 10}, evaluator=TABLE_EVAL,
                       objective={"type": "composite", "objectives": [{"type": "classification"}, LATENCY]},
                       trainer={"type": "simple", "steps": 6, "rollouts_per_step": 5, "checkpoint_every": 2,
                                "reuse": True})
    first = run_search(cfg, SearchOverrides(steps=3), run_dir=tmp_path / "run")
    out = run_search(cfg, run_dir=tmp_path / "run")
    rows = pd.read_csv(tmp_path / "run" / "rollouts.csv")
    assert first["queries"] == rows["arch_str"][:15].nunique()
    assert out["resumed_at"] == 3 and out["queries"] == rows["arch_str"].nunique() <= 30
    assert {"accuracy", "latency_ms"} <= set(out["pareto"][0]["perfs"]) and len(out["pareto"]) >= 2


def test_missing_key_column_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.read_csv(ACC_TABLE).head(20).rename(columns={"arch_str": "arch"}).to_csv(bad, index=False)
    ev, space = build({"type": "classification"}, table=str(bad))
    with pytest.raises(HwnasError) as exc:
        ev.evaluate([Rollout(space.sample(np.random.default_rng(0)))])
    msg = str(exc.value)
    assert "\n" not in msg and str(bad) in msg and "'arch_str'" in msg and "evaluator.key" in msg


def test_missing_row_names_file_and_arch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "small.csv"
    df = pd.read_csv(ACC_TABLE)
    df.head(10).to_csv(small, index=False)
    missing = df["arch_str"].iloc[100]
    cfg = write_config(tmp_path / "c.yaml", search_space={"type": "nb201"}, controller={"type": "random"},
                       evaluator={**TABLE_EVAL, "table": str(small)}, objective={"type": "classification"})
    assert main(["eval-arch", str(cfg), "--arch", df["arch_str"].iloc[3]]) == 0
    capsys.readouterr()
    assert main(["eval-arch", str(cfg), "--arch", missing]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(small) in err and missing in err


def test_missing_value_column_and_file(tmp_path: Path) -> None:
    ev, space = build({"type": "classification"}, perfs={"accuracy": "cifar100_acc"})
    with pytest.raises(HwnasError, match=r"evaluator\.perfs\.accuracy: .* no column 'cifar100_acc'"):
        ev.evaluate([Rollout(space.sample(np.random.default_rng(0)))])
    ev, space = build({"type": "classification"}, table=str(tmp_path / "none.csv"))
    with pytest.raises(HwnasError, match="none.csv.*not found"):
        ev.evaluate([Rollout(space.sample(np.random.default_rng(0)))])
