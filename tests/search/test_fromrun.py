"""Starting from a trained run: `hwnas sample RUN_DIR`, `hwnas derive RUN_DIR --from
controller`, `hwnas eval-arch CONFIG --load RUN_DIR`, and their one-line errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwnas.cli import main
from hwnas.search.archfile import read_arch_file

from .conftest import DATA, write_config

TABLE_EVAL = {"type": "table", "table": str(DATA / "nb201_accuracy.csv.gz")}
TINY = {"type": "nb201", "channels": 4, "cells_per_stage": 1, "resolution": 8, "in_channels": 1}


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def table_search(tmp_path: Path, capsys: pytest.CaptureFixture[str], controller: dict[str, Any]) -> Path:
    cfg = write_config(tmp_path / f"{controller['type']}.yaml", seed=2, search_space={"type": "nb201"},
                       controller=controller, evaluator=TABLE_EVAL, objective={"type": "classification"},
                       trainer={"type": "simple", "steps": 5, "rollouts_per_step": 4, "reuse": True, "plot": False})
    run = tmp_path / f"run-{controller['type']}"
    out = run_json(["search", str(cfg), "--run-dir", str(run)], capsys)
    assert out["queries"] == len({p for p in _history_archs(run)})
    return run


def _history_archs(run: Path) -> list[str]:
    import pandas as pd

    return list(pd.read_csv(run / "rollouts.csv")["arch_str"])


def test_sample_and_derive_from_trained_predictor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = table_search(tmp_path, capsys, {"type": "predictor", "init": 6, "pool": 50, "mutations": 100, "iters": 10})
    rows = run_json(["sample", str(run), "-n", "3"], capsys)
    assert len(rows) == 3 and not {r["arch_str"] for r in rows} & set(_history_archs(run))  # unseen proposals
    best = run_json(["derive", str(run), "--from", "controller", "--top", "4"], capsys)
    scores = [b["score"] for b in best]
    assert len(best) == 4 and scores == sorted(scores, reverse=True)
    for b in best:  # perfs where the run evaluated the arch, none otherwise
        assert b["evaluated"] == (b["arch_str"] in set(_history_archs(run))) and bool(b["perfs"]) == b["evaluated"]
    assert yaml.safe_load((run / "best.yaml").read_text()) == best
    assert read_arch_file(run / "best.yaml").arch == best[0]["arch_str"]  # hwnas train reads it


def test_derive_from_trained_rl_and_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = table_search(tmp_path, capsys, {"type": "rl", "hidden": 16})
    best = run_json(["derive", str(run), "--from", "controller", "--top", "3"], capsys)
    logp = [b["score"] for b in best]
    assert len(best) == 3 and logp == sorted(logp, reverse=True) and all(lp < 0 for lp in logp)
    run = table_search(tmp_path, capsys, {"type": "evolution", "population": 5, "sample_size": 2})
    err = one_line_error(["derive", str(run), "--from", "controller"], capsys)
    assert "cannot rank" in err and str(run) in err
    err = one_line_error(["sample", str(tmp_path)], capsys)  # a folder that is no run
    assert "not a search run directory" in err


def mepa_config(tmp_path: Path, name: str, space: dict[str, Any]) -> Path:
    return write_config(
        tmp_path / name, seed=0, search_space=space,
        dataset={"type": "digits", "resolution": 8, "channels": 1, "max_train": 256},
        controller={"type": "random"}, weights_manager={"type": "nb201_supernet"},
        evaluator={"type": "mepa", "steps": 15, "batch_size": 32, "eval_batches": 1, "eval_batch_size": 64,
                   "calib_batches": 1},
        objective={"type": "classification"},
        trainer={"type": "simple", "steps": 2, "rollouts_per_step": 2, "evaluator_updates": 1, "plot": False})


def test_eval_arch_with_trained_supernet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = mepa_config(tmp_path, "mepa.yaml", TINY)
    run = tmp_path / "run-mepa"
    run_json(["search", str(cfg), "--run-dir", str(run)], capsys)
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    fresh = run_json(["eval-arch", str(cfg), "--arch", arch], capsys)[0]
    loaded = run_json(["eval-arch", str(cfg), "--arch", arch, "--load", str(run)], capsys)[0]
    again = run_json(["eval-arch", str(cfg), "--arch", arch, "--load", str(run)], capsys)[0]
    assert loaded == again and loaded["loss"] != fresh["loss"]
    other = mepa_config(tmp_path, "wider.yaml", {**TINY, "channels": 8})
    err = one_line_error(["eval-arch", str(other), "--arch", arch, "--load", str(run)], capsys)
    assert str(run) in err and "channels=4" in err and "channels=8" in err
    table_run = table_search(tmp_path, capsys, {"type": "random"})
    err = one_line_error(["eval-arch", str(cfg), "--arch", arch, "--load", str(table_run)], capsys)
    assert str(table_run) in err
