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


# -- issue 26: one regression test per kind (each failed before its fix) -----------------------
def test_26_1_truncated_csv_gz(tmp_path: Path) -> None:
    import gzip

    table = tmp_path / "lat.csv.gz"
    table.write_bytes(gzip.compress((DATA / "nb201_latency_head60.csv").read_bytes())[:300])
    err = one_line_error(["fit-cost", "--dataset", table, "--space", "nb201", "--target", "gold_6226_ms"], "lat.csv.gz")
    assert "truncated or corrupt" in err


def test_26_2_resume_checkpoint_with_a_string_epoch(search_run: Path, tmp_path: Path) -> None:
    import torch

    cfg, arch = _train_files(tmp_path)
    out = tmp_path / "final"
    assert run(["train", cfg, "--arch", arch, "--out", out, "--epochs", "2", "--stop-after", "1"]).code == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    state["epoch"] = "1"
    torch.save(state, out / "checkpoint.pt")
    err = one_line_error(["train", cfg, "--arch", arch, "--out", out, "--resume", "--epochs", "2"], "checkpoint.pt")
    assert "epoch: expected an integer >= 0, got '1'" in err


def _train_files(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "t.yaml"
    cfg.write_text("seed: 0\ndataset: {type: digits, resolution: 8, channels: 1, max_train: 32}\n"
                   "search_space: {type: nb201, channels: 4, cells_per_stage: 1, resolution: 8, in_channels: 1}\n")
    arch = tmp_path / "a.yaml"
    arch.write_text("arch: '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|'\n")
    return cfg, arch


def test_26_3_mapping_extras_a_list(tmp_path: Path) -> None:
    y = tmp_path / "map.yaml"
    y.write_text("conv1: {op: conv, c_in: 3, c_out: 16, h: 32, w: 32, extras: [1, 2]}\n")
    err = one_line_error(["ingest", "--format", "dnndk", DATA / "fpga" / "dnndk_proxylessmobile05.log", "--mapping", y,
                          "--device", "z", "--dry-run"], "map.yaml")
    assert "conv1" in err and "extras: expected a mapping" in err


@pytest.mark.parametrize("field,value", [("perfs", {"latency_ms": "fast"}), ("reward", "high"), ("step", 1.5),
                                         ("arch_str", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")])
def test_26_4_garbage_history_with_the_right_config_hash(search_run: Path, tmp_path: Path, field: str,
                                                         value: object) -> None:
    rd = tmp_path / "run"
    shutil.copytree(search_run / "run", rd)
    doc = json.loads((rd / "checkpoint.json").read_text())
    doc["state"]["history"][0][field] = value
    (rd / "checkpoint.json").write_text(json.dumps(doc))
    one_line_error(["derive", rd, "--out", tmp_path / "b.yaml"], "checkpoint.json")
    one_line_error(["search", search_run / "search.yaml", "--run-dir", rd], "checkpoint.json")


def test_26_4_derive_a_differentiable_record_without_an_architecture(search_run: Path, tmp_path: Path) -> None:
    rd = tmp_path / "run"
    shutil.copytree(search_run / "run", rd)
    doc = json.loads((rd / "checkpoint.json").read_text())
    doc["state"].update(kind="differentiable", derived={"perfs": {}})
    (rd / "checkpoint.json").write_text(json.dumps(doc))
    one_line_error(["derive", rd, "--out", tmp_path / "b.yaml"], "checkpoint.json", "derived")


@pytest.mark.parametrize("field,value", [("arch_str", "normal:bogus~0"), ("step", "one")])
def test_26_4_differentiable_resume_names_the_damaged_history_row(tmp_path: Path, field: str, value: object) -> None:
    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 1, "search_space": {"type": "darts", "cells": 3, "channels": 4, "nodes": 2, "resolution": 8,
                                    "in_channels": 1},
        "dataset": {"type": "digits", "resolution": 8, "channels": 1, "valid_fraction": 0.4, "max_train": 64},
        "controller": {"type": "darts", "lr": 0.1}, "weights_manager": {"type": "diff_supernet"},
        "objective": {"type": "classification"},
        "trainer": {"type": "differentiable", "epochs": 2, "steps_per_epoch": 1, "batch_size": 16,
                    "eval_batches": 1, "calib_batches": 1, "stop_after": 1}}))
    rd = tmp_path / "run"
    assert run(["search", cfg, "--run-dir", rd]).code == 0
    doc = json.loads((rd / "checkpoint.json").read_text())
    doc["state"]["history"][0][field] = value
    (rd / "checkpoint.json").write_text(json.dumps(doc))
    err = one_line_error(["search", cfg, "--run-dir", rd], "checkpoint.json")
    assert "history row 0" in err


def test_26_5_gen_config_refuses_a_supernet_of_another_space(tmp_path: Path) -> None:
    err = one_line_error(["gen-config", "--search-space", "mbv2", "--weights-manager", "nb201_supernet", "--out",
                          tmp_path / "c.yaml"], "--weights-manager")
    assert "nb201_supernet serves the search space(s) nb201, got 'mbv2'" in err
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize("arch", ["|nor_conv_3x3~0|+|none~0|skip_connect~\u0661|+|skip_connect~0|none~1|nor_conv_1x1~2|",
                                  "|nor_conv_3x3~0|+|none~0|skip_connect~+1|+|skip_connect~0|none~1|nor_conv_1x1~2|"])
def test_26_6_eval_arch_with_non_ascii_digits(search_run: Path, arch: str) -> None:
    one_line_error(["eval-arch", search_run / "search.yaml", "--arch", arch], "nb201")


def test_26_6_mbv2_stage_prefix_other_than_d() -> None:
    from hwnas.config import build_space
    from hwnas.errors import ValidationError

    sp = build_space("mbv2", {})
    good = "d2:e3k3,e4k5|d2:e4k5,e4k7|d2:e4k7,e4k7|d3:e6k5,e6k3,e3k3|d2:e3k7,e4k7"
    assert sp.to_str(sp.from_str(good)) == good
    for bad in (good.replace("d2", "x2", 1), good.replace("e3k3", "e\u0663k3", 1), good.replace("k3", "q3", 1)):
        with pytest.raises(ValidationError, match="^mbv2: "):
            sp.from_str(bad)


def test_26_7_three_rows_are_too_few(tmp_path: Path) -> None:
    table = tmp_path / "three.csv"
    table.write_text("\n".join((DATA / "nb201_latency_head60.csv").read_text().splitlines()[:4]) + "\n")
    err = one_line_error(["fit-cost", "--dataset", table, "--space", "nb201", "--target", "gold_6226_ms"], "three.csv")
    assert "need at least 4: 2 to train on, 2 held out" in err


def test_26_8_float_extremes(tmp_path: Path) -> None:
    import numpy as np

    from hwnas.cost_models.metrics import regression_metrics

    rows = (DATA / "nb201_latency_head60.csv").read_text().splitlines()
    cells = rows[3].split(",")
    cells[7] = "1e308"
    rows[3] = ",".join(cells)
    table = tmp_path / "big.csv"
    table.write_text("\n".join(rows) + "\n")
    err = one_line_error(["fit-cost", "--dataset", table, "--space", "nb201", "--target", "gold_6226_ms"], "big.csv:4")
    assert "expected a finite value in [0, 1e+09]" in err
    m = regression_metrics(np.array([1e300, 2e300]), np.array([2e300, 2e300]))
    assert np.isclose(m["rmse"], 1e300 / np.sqrt(2)) and np.isclose(m["rel_rmse"], 1 / np.sqrt(2))
    one_line_error(["fit-cost", "--dataset", table, "--space", "nb201", "--target", "gold_6226_ms", "--min-value", "0"],
                   "--min-value")


@pytest.mark.parametrize("flag,value", [("--model", ""), ("--model", "lut,,mlp")])
def test_26_9_empty_model_list(search_run: Path, flag: str, value: str) -> None:
    _model(search_run)
    one_line_error(["fit-cost", "--store", search_run / "s.sqlite", "--device", "cpu", "--backend", "fake",
                    f"{flag}={value}"], flag)


@pytest.mark.parametrize("opt,domain", [("kernels=[2,4]", "must be odd, got 2 (expected odd, distinct, in [1, 9])"),
                                        ("resolution=1000000", "must be <= 2048, got 1000000 (expected in [8, 2048])")])
def test_26_10_space_options_outside_their_domain(tmp_path: Path, opt: str, domain: str) -> None:
    err = one_line_error(["profile", "--space", "mbv2", "--space-opt", opt, "--export-only", tmp_path / "b"], "mbv2.")
    assert domain in err


def test_26_11_arch_without_space(search_run: Path) -> None:
    err = one_line_error(["predict", "--model", _model(search_run), "--arch", "0-1-2"], "--arch")
    assert "--arch needs --space" in err


@pytest.mark.parametrize("flag,value,needs", [("--segments", "run_time_stamps.txt", "--power"),
                                              ("--inferences", "10", "--power"), ("--clock-offset", "2", "--segments")])
def test_26_12_options_that_need_another(flag: str, value: str, needs: str) -> None:
    fpga = DATA / "fpga"
    arg = str(fpga / value) if value.endswith(".txt") else value
    err = one_line_error(["ingest", "--format", "dnndk", fpga / "dnndk_proxylessmobile05.log", "--device", "z", flag,
                          arg, "--dry-run"], flag)
    assert f"{flag} needs {needs}" in err


def test_option_key_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    """Found by the config fuzzer on a fresh clone: a flow mapping with a bare value (``{type: evolution, 4}``)
    gives an integer key, which crashed the did-you-mean hint."""
    cfg = table_config(tmp_path, steps=2)
    text = cfg.read_text()
    assert "type: evolution" in text
    cfg.write_text(text.replace("type: evolution", "type: evolution, 4", 1))
    err = one_line_error(["search", cfg, "--run-dir", tmp_path / "run"], "controller.4")
    assert "option names are text, got int 4" in err
