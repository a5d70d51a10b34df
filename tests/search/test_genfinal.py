"""``hwnas gen-config --final``: the final-training config of a derived architecture."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hwnas.cli import main
from hwnas.config import load_config
from hwnas.search.api import derive_archs, run_search
from hwnas.search.archfile import read_arch_file

DATA = Path(__file__).resolve().parents[1] / "data"
SEARCH = {"seed": 0, "search_space": {"type": "nb201", "channels": 8, "cells_per_stage": 1},
          "controller": {"type": "evolution", "population": 8, "sample_size": 3},
          "evaluator": {"type": "table", "table": str(DATA / "nb201_accuracy.csv.gz"),
                        "perfs": {"accuracy": "cifar10_test_acc"}, "scale": {"accuracy": 0.01}},
          "objective": {"type": "composite", "objectives": [
              {"type": "classification"},
              {"type": "hardware", "table": str(DATA / "nb201_latency_slice.csv.gz"), "column": "gold_6226_ms"}]},
          "trainer": {"type": "simple", "steps": 4, "rollouts_per_step": 4, "checkpoint_every": 2},
          "run": {"train": {"epochs": 50, "space": {"channels": 16, "cells_per_stage": 5}}}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("genfinal")
    (root / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    run_search(root / "search.yaml", run_dir=root / "run")
    return root / "run"


def test_final_config_of_a_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen-config", "--final", str(run_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    cfg = load_config(res["config"])  # loads as a run config
    d = yaml.safe_load(Path(res["config"]).read_text())
    assert not {"controller", "evaluator", "trainer", "weights_manager"} & set(d)
    assert d["search_space"]["channels"] == 16 and d["search_space"]["cells_per_stage"] == 5  # run.train.space applied
    assert d["run"]["train"]["space"] == {} and d["run"]["train"]["epochs"] == 50
    assert cfg["objective"].type == "composite"
    arch = read_arch_file(res["arch"])
    best = derive_archs(run_dir, top=1, out=run_dir.parent / "best.yaml")[0]
    assert arch.arch == best["arch_str"] == res["arch_str"] and arch.space == "nb201"
    assert arch.space_options["channels"] == 16


def test_rank_and_architecture_file(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    derive_archs(run_dir, top=3, out=tmp_path / "best.yaml")
    ranked = yaml.safe_load((tmp_path / "best.yaml").read_text())
    out = tmp_path / "final.yaml"
    assert main(["gen-config", "--final", str(tmp_path / "best.yaml"), "--config", str(run_dir / "config.yaml"),
                 "--rank", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert read_arch_file(tmp_path / "final-arch.yaml").arch == ranked[1]["arch_str"]
    assert out.read_text().startswith(f"# Final training of {ranked[1]['arch_str']}")


def test_bad_input_is_one_line(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    derive_archs(run_dir, top=1, out=tmp_path / "best.yaml")
    for argv, words in ((["--final", str(tmp_path / "best.yaml")], "needs --config"),
                        (["--final", str(tmp_path / "nope")], "no such run folder"),
                        (["--final", str(tmp_path)], "not a search run folder"),
                        (["--final", str(run_dir), "--rank", "99"], "out of range")):
        assert main(["gen-config", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err, err
