"""The search commands end to end (the mbv2 + digits + tune search is the slow one)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from hwnas.cli import main
from hwnas.config import load_config
from hwnas.search.spaces.mbv2 import MBV2Space

from .conftest import fake_store, write_config

COMMANDS = ["search", "sample", "random-sample", "eval-arch", "derive", "gen-config"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_has_example(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    assert "example:\n  hwnas " + cmd in capsys.readouterr().out


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_search_derive_sample_eval(nb201_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = nb201_config()
    out = run_json(["search", str(cfg), "--run-dir", str(tmp_path / "run"), "--budget-ms", "5", "--steps", "6"],
                   capsys)
    assert out["rollouts"] == 30 and all(p["perfs"]["latency_ms"] <= 5 for p in out["pareto"])
    best = run_json(["derive", str(tmp_path / "run"), "--top", "3", "--out", str(tmp_path / "best.yaml")], capsys)
    saved = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert saved == best and len(best) <= 3 and best[0]["reward"] >= best[-1]["reward"]
    assert all(b["perfs"]["latency_ms"] <= 5 for b in best)
    rows = run_json(["sample", "--space", "nb201", "-n", "4"], capsys)
    assert len(rows) == 4 and rows[0]["arch_str"].startswith("|")
    rows = run_json(["eval-arch", str(cfg), "--arch", best[0]["arch_str"]], capsys)
    assert rows[0]["latency_ms"] == pytest.approx(best[0]["perfs"]["latency_ms"])
    rows = run_json(["random-sample", str(cfg), "-n", "3"], capsys)
    assert len(rows) == 3


def test_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "bad.yaml", search_space={"type": "nb201"}, controller={"type": "evolutoin"})
    assert main(["search", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "controller.type" in err and "evolution" in err


@pytest.mark.parametrize("dataset,space,controller,evaluator", [
    ("digits", "mbv2", "evolution", "tune"), ("synthetic", "nb201", "rl", "tune"),
    ("cifar10", "fbnet", "pareto", "predictor")])
def test_gen_config_loads(tmp_path: Path, dataset: str, space: str, controller: str, evaluator: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gen.yaml"
    assert main(["gen-config", "--dataset", dataset, "--search-space", space, "--controller", controller,
                 "--evaluator", evaluator, "--out", str(out)]) == 0
    text = out.read_text()
    assert "# depth choices per stage" in text or space != "mbv2"
    cfg = load_config(out)
    assert cfg["controller"].type == controller and cfg["dataset"].type == dataset
    if dataset == "digits":
        assert cfg["search_space"].options.num_classes == 10 and cfg["search_space"].options.resolution == 32


@pytest.mark.slow
def test_mbv2_digits_tune_search_meets_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real train-from-scratch search: every reported architecture meets the latency budget."""
    sp = {"type": "mbv2", "resolution": 16, "width": 0.35, "in_channels": 1, "num_classes": 10,
          "depths": [1, 2], "expansions": [3, 6], "kernels": [3, 5]}
    space = MBV2Space(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in sp.items() if k != "type"})
    store = fake_store(tmp_path / "store.sqlite", space)
    cfg = write_config(
        tmp_path / "mbv2.yaml", seed=0,
        dataset={"type": "digits", "resolution": 16, "channels": 1, "max_train": 600},
        search_space=sp, controller={"type": "evolution", "population": 4, "sample_size": 2},
        weights_manager={"type": "plain"},
        evaluator={"type": "tune", "epochs": 2, "batch_size": 32, "lr": 0.05, "threads": 1},
        objective={"type": "composite", "objectives": [
            {"type": "classification"},
            {"type": "hardware", "store": "store.sqlite", "device": "fake-cpu", "backend": "torch"}]},
        trainer={"type": "simple", "steps": 10, "checkpoint_every": 4, "reuse": True})
    run = tmp_path / "run"
    out = run_json(["search", str(cfg), "--objective", "latency", "--budget-ms", "0.30", "--run-dir", str(run)],
                   capsys)
    df = pd.read_csv(run / "rollouts.csv")
    assert len(df) == 10 and (run / "pareto.png").stat().st_size > 1000
    assert out["pareto"] and all(p["perfs"]["latency_ms"] <= 0.30 for p in out["pareto"])
    trained = df[df.accuracy.notna()]
    assert len(trained) >= 2 and trained.accuracy.max() > 0.3  # it learns (10 classes)
    assert (df[df.latency_ms > 0.30].accuracy.isna()).all()  # over budget: never trained
    assert store.is_file()
