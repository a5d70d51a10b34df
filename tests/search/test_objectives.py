"""Objectives: hardware sources and modes, composite rewards, config errors with YAML paths."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hwnas.config import load_config
from hwnas.errors import ConfigError
from hwnas.search.build import build_components, load_run_config
from hwnas.search.objectives.hardware import WORST
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.nb201 import NB201Space

from .conftest import NB201_TABLE, fake_store, write_config


def objective_from(tmp_path: Path, objective: dict[str, Any], space: dict[str, Any] | None = None) -> Any:
    cfg = write_config(tmp_path / "c.yaml", search_space=space or {"type": "nb201"},
                       evaluator={"type": "predictor"}, objective=objective)
    return build_components(load_run_config(cfg), controller=False).objective


def test_table_source_matches_csv(tmp_path: Path) -> None:
    obj = objective_from(tmp_path, {"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms"})
    df = pd.read_csv(NB201_TABLE).sample(50, random_state=0)
    space = NB201Space()
    archs = [space.from_str(s) for s in df.arch_str]
    np.testing.assert_allclose(obj.values(archs), df.gold_6226_ms.to_numpy())
    perfs = obj.perfs([Rollout(a) for a in archs[:2]])
    assert obj.reward(perfs[0]) == -perfs[0]["latency_ms"] and obj.directions() == {"latency_ms": "min"}


def test_store_source_is_naive_sum(tmp_path: Path) -> None:
    space = MBV2Space(resolution=32, width=0.35, in_channels=1, num_classes=10)
    store = fake_store(tmp_path / "s.sqlite", space)
    sp = {"type": "mbv2", "resolution": 32, "width": 0.35, "in_channels": 1, "num_classes": 10}
    obj = objective_from(tmp_path, {"type": "hardware", "store": str(store), "device": "fake-cpu",
                                    "backend": "torch"}, sp)
    from hwnas.store import Store

    with Store(store, create=False) as st:
        table = st.table(st.find_device("fake-cpu")["id"], "torch")
    arch = space.sample(np.random.default_rng(0))
    want = sum(table[n.key] for n in space.to_network(arch).nodes)
    assert obj.values([arch])[0] == pytest.approx(want)


def test_constraint_and_penalty_modes(tmp_path: Path) -> None:
    base = {"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms"}
    con = objective_from(tmp_path, {**base, "mode": "constraint", "budget": 10.0})
    assert con.reward({"latency_ms": 9.0, "accuracy": 0.7}) == 0.7
    bad = con.reward({"latency_ms": 12.0, "accuracy": 0.9})
    assert bad < WORST + 1 and bad < con.reward({"latency_ms": 11.0, "accuracy": 0.1})  # violators: worst
    assert not con.feasible({"latency_ms": 12.0}) and con.feasible({"latency_ms": 10.0})
    pen = objective_from(tmp_path, {**base, "mode": "penalty", "budget": 10.0, "weight": -0.07})
    assert pen.reward({"latency_ms": 20.0, "accuracy": 0.8}) == pytest.approx(0.8 * 2 ** -0.07)
    assert pen.reward({"latency_ms": 5.0, "accuracy": 0.8}) > 0.8


def test_composite_weights_and_modifiers(tmp_path: Path) -> None:
    hw = {"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms"}
    energy = tmp_path / "energy.csv"  # a made-up energy column (mJ) beside the latency table
    df = pd.read_csv(NB201_TABLE)
    pd.DataFrame({"arch_str": df.arch_str, "made_up_mj": df.silver_4114_ms}).to_csv(energy, index=False)
    obj = objective_from(tmp_path, {"type": "composite", "objectives": [
        {"type": "hardware", "name": "gold", **{k: v for k, v in hw.items() if k != "type"}, "weight": 0.01},
        {"type": "hardware", "name": "silver", "table": str(energy), "column": "made_up_mj",
         "metric": "energy", "mode": "constraint", "budget": 8.0}]})
    arch = NB201Space().from_str(pd.read_csv(NB201_TABLE).arch_str[1])
    p = obj.perfs([Rollout(arch)])[0]
    assert set(p) == {"latency_ms", "energy_mj"}
    if p["energy_mj"] <= 8.0:
        assert obj.reward(p) == pytest.approx(-0.01 * p["latency_ms"])
    else:
        assert obj.reward(p) < WORST + 1
    assert obj.directions() == {"latency_ms": "min", "energy_mj": "min"}


@pytest.mark.parametrize("objective,message", [
    ({"type": "hardware", "metric": "latncy", "table": "x.csv", "column": "c"},
     r"objective\.metric: expected one of 'latency', 'energy', got 'latncy' \(did you mean 'latency'\?\)"),
    ({"type": "hardware"}, r"objective\.model: give exactly one source"),
    ({"type": "hardware", "table": "x.csv"}, r"objective\.column: a table source needs"),
    ({"type": "hardware", "table": "x.csv", "column": "c", "mode": "constraint"}, r"objective\.budget: mode"),
    ({"type": "composite", "objectives": [{"type": "hardware", "table": "x.csv", "column": "c", "budget": -1}]},
     r"objective\.objectives\[0\]\.budget: must be >= 0.0, got -1"),
    ({"type": "hardwear"}, r"objective\.type: .*did you mean 'hardware'"),
])
def test_config_errors_name_the_yaml_path(tmp_path: Path, objective: dict[str, Any], message: str) -> None:
    cfg = write_config(tmp_path / "bad.yaml", search_space={"type": "nb201"}, objective=objective)
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(cfg)
    assert str(exc.value).startswith(str(cfg))


def test_search_config_errors(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", search_space={"type": "nb201"},
                       controller={"type": "evolution", "populaton": 3})
    with pytest.raises(ConfigError, match=r"controller\.populaton: unknown option \(did you mean 'population'\?\)"):
        load_run_config(cfg)
    cfg = write_config(tmp_path / "d.yaml", search_space={"type": "nb201"}, objective={"type": "classification"})
    with pytest.raises(ConfigError, match="a hardware metric or budget needs a hardware objective"):
        load_run_config(cfg, budget=3.0)
    cfg = write_config(tmp_path / "e.yaml", dataset={"type": "digits", "channels": 1},
                       search_space={"type": "nb201", "in_channels": 3}, evaluator={"type": "predictor"},
                       objective={"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms"})
    with pytest.raises(ConfigError, match=r"search_space\.in_channels: is 3 but the dataset gives 1"):
        build_components(load_run_config(cfg))
    cfg = write_config(tmp_path / "f.yaml", search_space={"type": "nb201"}, evaluator={"type": "predictor"},
                       objective={"type": "hardware", "table": str(tmp_path / "missing.csv"), "column": "c"})
    comps = build_components(load_run_config(cfg), controller=False)
    with pytest.raises(ConfigError, match="missing.csv"):
        comps.evaluator.evaluate([Rollout((0,) * 6)])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("config", ["search-nb201-table.yaml", "search-nb201-asset.yaml"])
def test_energy_from_a_latency_source_is_refused(config: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Regression (issue 27, defect 1): `--objective energy` on a latency table or model
    reported the latency numbers as energy_mj. A source says what it holds."""
    from hwnas.cli import main

    cfg = Path(__file__).resolve().parents[2] / "configs" / config
    assert main(["search", str(cfg), "--objective", "energy", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(r"objective\.metric: .* holds latency \(ms\) of .*, not energy", err), err
    assert not list((tmp_path / "run").glob("**/*.jsonl")) or "energy_mj" not in "".join(
        f.read_text() for f in (tmp_path / "run").glob("**/*.jsonl"))


def test_estimator_is_a_store_option(tmp_path: Path) -> None:
    """The store's estimator is one option of both hardware objectives; elsewhere it is refused."""
    space = MBV2Space()
    store = fake_store(tmp_path / "s.sqlite", space)
    base = {"type": "hardware", "store": str(store), "device": "fake-cpu", "backend": "torch"}
    robust = objective_from(tmp_path, base, {"type": "mbv2"})
    median = objective_from(tmp_path, {**base, "estimator": "median_ms"}, {"type": "mbv2"})
    arch = space.sample(np.random.default_rng(0))
    assert robust.source().estimator.startswith("latency_ms") and median.source().estimator == "median_ms"
    assert robust.values([arch])[0] == pytest.approx(median.values([arch])[0])  # one sample: robust = median
    cfg = write_config(tmp_path / "bad.yaml", search_space={"type": "nb201"},
                       objective={"type": "hardware", "table": "x.csv", "column": "c_ms", "estimator": "median_ms"})
    with pytest.raises(ConfigError, match=r"objective\.estimator: chooses a store's column"):
        load_run_config(cfg)
