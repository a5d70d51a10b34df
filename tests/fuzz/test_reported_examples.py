"""Every example of the hostile-user report (issue 16), one test each: a one-line error
(exit 2, no traceback) or a correct result. The fuzz suite (tests/fuzz) covers the
classes; these pin the exact cases that were reported."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import DATA, check, digest, run, table_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def one_line_error(argv: list, *names: str) -> str:
    res = run(argv)
    assert res.code == 2, f"{argv}: exit {res.code}, stderr {res.err[-500:]}"
    check(res, argv, names)
    return res.err


@pytest.fixture(scope="module")
def search_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("edges")
    cfg = table_config(d, steps=2)
    assert run(["search", cfg, "--run-dir", d / "run"]).code == 0
    return d


# -- tracebacks -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["config", "table", "networks", "arch"])
def test_non_utf8_bytes(tmp_path: Path, search_run: Path, kind: str) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"seed: 0\nsearch_space: {type: nb201}\n# \xff\xfe\n")
    argv = {"config": ["search", bad, "--run-dir", tmp_path / "r"],
            "table": ["fit-cost", "--dataset", bad, "--space", "nb201", "--target", "gold_6226_ms"],
            "networks": ["predict", "--model", tmp_path, "--networks", bad],
            "arch": ["train", search_run / "search.yaml", "--arch", bad]}[kind]
    if kind == "networks":
        shutil.copytree(_model(search_run), tmp_path / "m")
        argv[2] = tmp_path / "m"
    err = one_line_error(argv, "bad.txt")
    assert "UTF-8" in err or "undecodable" in err or "not valid" in err


def _model(search_run: Path) -> Path:
    m = search_run / "models" / "linear1"
    if not m.exists():
        store = search_run / "s.sqlite"
        assert run(["profile", "--space", "toy", "--backend", "fake", "--networks", "8", "--store", store,
                    "--sessions", "1"]).code == 0
        assert run(["fit-cost", "--store", store, "--device", "cpu", "--backend", "fake", "--model", "linear1",
                    "--out", search_run / "models"]).code == 0
    return m


@pytest.mark.parametrize("content", ["{}", '{"format": 1, "step": 2, "state": {"step": 2, "history": [{"perfs": {}}]}}',
                                     '{"format": 1, "step": 2, "state": {"history": [{"arch": [0]}]}}'])
def test_damaged_run_dir(search_run: Path, tmp_path: Path, content: str) -> None:
    rd = tmp_path / "run"
    shutil.copytree(search_run / "run", rd)
    (rd / "checkpoint.json").write_text(content)
    one_line_error(["derive", rd, "--out", tmp_path / "b.yaml"], "checkpoint")
    one_line_error(["search", search_run / "search.yaml", "--run-dir", rd], "checkpoint")


def test_train_resume_checkpoint_without_model(search_run: Path, tmp_path: Path) -> None:
    import torch

    cfg = tmp_path / "t.yaml"
    cfg.write_text("seed: 0\ndataset: {type: digits, resolution: 8, channels: 1, max_train: 32}\n"
                   "search_space: {type: nb201, channels: 4, cells_per_stage: 1, resolution: 8, in_channels: 1}\n")
    arch = tmp_path / "a.yaml"
    arch.write_text("arch: '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|'\n")
    out = tmp_path / "final"
    out.mkdir()
    torch.save({"format": "hwnas-final/2", "arch": [3, 0, 1, 1, 0, 2], "epoch": 1}, out / "checkpoint.pt")
    one_line_error(["train", cfg, "--arch", arch, "--out", out, "--resume", "--epochs", "2"], "checkpoint.pt")


def test_model_folder_resigned_with_a_key_missing(search_run: Path, tmp_path: Path) -> None:
    from hwnas.inputs import file_sha256 as _sha256

    m = tmp_path / "m"
    shutil.copytree(_model(search_run), m)
    doc = json.loads((m / "model.json").read_text())
    del doc["state"]["coef"]
    (m / "model.json").write_text(json.dumps(doc))
    manifest = json.loads((m / "manifest.json").read_text())
    manifest["files"]["model.json"] = _sha256(m / "model.json")
    (m / "manifest.json").write_text(json.dumps(manifest))
    one_line_error(["predict", "--model", m, "--space", "toy", "--arch", "-".join(["0"] * 12)], "coef")


def test_manifest_edge_of_one_node(tmp_path: Path) -> None:
    nets = tmp_path / "n.json"
    nets.write_text(json.dumps([{"input_shape": [3, 8, 8], "edges": [[0]],
                                 "nodes": [{"op": "conv", "c_in": 3, "c_out": 4, "h": 8, "w": 8}] * 2}]))
    one_line_error(["predict", "--model", tmp_path, "--networks", nets], "manifest")


def test_empty_space_option_and_negative_seed(tmp_path: Path) -> None:
    one_line_error(["profile", "--space", "mbv2", "--space-opt", "depths=[]", "--export-only", tmp_path / "b"], "depths")
    one_line_error(["profile", "--space", "mbv2", "--seed", "-1", "--export-only", tmp_path / "b"], "--seed")
    one_line_error(["sample", "--space", "nb201", "--seed", "-1"], "--seed")


# -- silent acceptance of wrong data ----------------------------------------------------------
@pytest.mark.parametrize("value", ["-17.0", "inf", "nan-ish"])
def test_bad_latencies_in_a_table_are_refused(tmp_path: Path, value: str) -> None:
    rows = (DATA / "nb201_latency_head60.csv").read_text().splitlines()
    cells = rows[5].split(",")
    cells[7] = value  # gold_6226_ms
    rows[5] = ",".join(cells)
    table = tmp_path / "lat.csv"
    table.write_text("\n".join(rows) + "\n")
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump({"search_space": {"type": "nb201"}, "controller": {"type": "random"},
                                   "evaluator": {"type": "predictor"},
                                   "objective": {"type": "hardware", "table": str(table), "column": "gold_6226_ms"},
                                   "trainer": {"type": "simple", "steps": 1}}))
    one_line_error(["search", cfg, "--run-dir", tmp_path / "r"], "lat.csv:6")
    one_line_error(["fit-cost", "--dataset", table, "--space", "nb201", "--target", "gold_6226_ms"], "lat.csv:6")


def test_duplicate_rows_do_not_leak_between_train_and_test(tmp_path: Path) -> None:
    from hwnas.cost_models.data import from_csv

    rows = (DATA / "nb201_latency_head60.csv").read_text().splitlines()
    table = tmp_path / "dup.csv"
    table.write_text("\n".join(rows + rows[1:]) + "\n")
    d = from_csv(table, "nb201", "gold_6226_ms")
    assert len({n.hash for n in d.networks}) == len(d.networks) == len(rows) - 1
    assert d.summary["merged_duplicates"] == len(rows) - 1


@pytest.mark.parametrize("flag,value", [("--lr", "inf"), ("--lr", "nan"), ("--epochs", "-1")])
def test_training_options_must_be_finite(search_run: Path, tmp_path: Path, flag: str, value: str) -> None:
    one_line_error(["train", search_run / "search.yaml", "--arch", tmp_path / "a.yaml", flag, value], flag)


@pytest.mark.parametrize("flag", ["--clock-offset", "--time-budget", "--min-time-ms"])
def test_nan_timing_and_clock_options(tmp_path: Path, flag: str) -> None:
    base = (["ingest", "--format", "dnndk", DATA / "fpga" / "dnndk_proxylessmobile05.log", "--device", "z"]
            if flag == "--clock-offset" else ["profile", "--space", "toy", "--backend", "fake"])
    one_line_error([*base, flag, "nan", "--store", tmp_path / "s.sqlite"], flag)


def test_cost_model_with_nan_weights_is_refused(search_run: Path, tmp_path: Path) -> None:
    from hwnas.inputs import file_sha256 as _sha256

    m = tmp_path / "m"
    shutil.copytree(_model(search_run), m)
    doc = json.loads((m / "model.json").read_text())
    doc["state"]["coef"][0] = float("nan")
    (m / "model.json").write_text(json.dumps(doc))
    manifest = json.loads((m / "manifest.json").read_text())
    manifest["files"]["model.json"] = _sha256(m / "model.json")
    (m / "manifest.json").write_text(json.dumps(manifest))
    one_line_error(["predict", "--model", m, "--space", "toy", "--arch", "-".join(["0"] * 12)], "non-finite")


@pytest.mark.parametrize("argv", [["store", "show", "--limit", "-5"], ["profile", "--space", "toy", "--networks", "-5"],
                                  ["profile", "--space", "toy", "--backend", ""]])
def test_negative_and_empty_options(tmp_path: Path, argv: list) -> None:
    one_line_error([*argv, "--store", tmp_path / "s.sqlite"], argv[-2], argv[-2].lstrip("-"))
    assert not (tmp_path / "s.sqlite").exists()


def test_awnas_file_with_every_entry_skipped(tmp_path: Path) -> None:
    f = tmp_path / "blocks.yaml"
    f.write_text(yaml.safe_dump([{"prim_type": "conv_3x3", "C": 3, "C_out": 8, "expansion": 1, "kernel_size": 3,
                                  "spatial_size": None, "stride": 1, "affine": True,
                                  "performances": {"latency": 0.1}}]))
    one_line_error(["ingest", "--format", "awnas-yaml", f, "--device", "z", "--store", tmp_path / "s.sqlite"],
                   "blocks.yaml", "nothing to store")
    assert not (tmp_path / "s.sqlite").exists()


# -- state damage and hangs -------------------------------------------------------------------
def test_refused_search_keeps_the_runs_config(search_run: Path, tmp_path: Path) -> None:
    rd = tmp_path / "run"
    shutil.copytree(search_run / "run", rd)
    before = digest(rd / "config.yaml")
    other = tmp_path / "other.yaml"
    other.write_text((search_run / "search.yaml").read_text().replace("population: 4", "population: 5"))
    one_line_error(["search", other, "--run-dir", rd], "different config")
    assert digest(rd / "config.yaml") == before


@pytest.mark.parametrize("argv", [["profile", "--space", "toy", "--networks", str(10**12)],
                                  ["search", "CFG", "--steps", str(10**20)]])
def test_gigantic_sizes_are_refused_not_hung(search_run: Path, tmp_path: Path, argv: list) -> None:
    argv = [search_run / "search.yaml" if a == "CFG" else a for a in argv]
    one_line_error([*argv, *(["--store", tmp_path / "s.sqlite"] if argv[0] == "profile" else
                             ["--run-dir", tmp_path / "r"])], "networks", "steps")


def test_rollouts_per_step_gigantic(search_run: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "big.yaml"
    cfg.write_text((search_run / "search.yaml").read_text().replace("rollouts_per_step: 2", f"rollouts_per_step: {10**12}"))
    one_line_error(["search", cfg, "--run-dir", tmp_path / "r"], "rollouts_per_step")


def test_yaml_alias_bomb_gives_a_short_error(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 2000
    err = one_line_error(["search", bomb], "bomb.yaml", "aliases")
    assert len(err) < 300
