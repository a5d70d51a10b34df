"""The example plugin beside this file works like an installed one.

``hwnas_example_plugin-0.1.dist-info`` declares the ``hwnas.plugins`` entry point, so
putting this folder on PYTHONPATH is what ``pip install`` would do. Every check runs
hwnas in a subprocess with that path: the plugin's components must be listed by
``hwnas registry``, pass the contract suites, and be usable from the command line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLUGIN_DIR = Path(__file__).resolve().parent
#: What the plugin registers (role, name).
COMPONENTS = {("backend", "example-torchscript"), ("ingest_format", "example-tsv"), ("power_format", "example-mw"),
              ("cost_model", "example-scaled-sum"), ("controller", "example-hillclimb")}
CLI = "import sys; from hwnas.cli import main; sys.exit(main(sys.argv[1:]))"
FAST_TIMING = ["--warmup", "1", "--min-repeats", "2", "--max-repeats", "3", "--sessions", "1", "--time-budget", "1",
               "--min-time-ms", "0.2"]


def python(args: list[str], cwd: Path, *, plugin: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != PLUGIN_DIR]
    env["PYTHONPATH"] = os.pathsep.join(([str(PLUGIN_DIR)] if plugin else []) + paths)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def hwnas(*args: str, cwd: Path, plugin: bool = True) -> dict | list:
    """Run the real CLI with --json; fail the test with its stderr unless it exits 0."""
    res = python(["-c", CLI, *args, "--json"], cwd, plugin=plugin)
    assert res.returncode == 0, f"hwnas {' '.join(args)} exited {res.returncode}:\n{res.stderr[-3000:]}"
    return json.loads(res.stdout)


def test_registry_lists_the_plugin_only_when_it_is_on_the_path(tmp_path: Path) -> None:
    rows = hwnas("registry", cwd=tmp_path)
    found = {(r["role"], r["name"]): r["module"] for r in rows}
    assert COMPONENTS <= set(found)
    assert all(found[c].startswith("hwnas_example_plugin.") for c in COMPONENTS)
    without = hwnas("registry", cwd=tmp_path, plugin=False)
    assert not COMPONENTS & {(r["role"], r["name"]) for r in without}


def test_plugin_components_pass_the_contract_suites(tmp_path: Path) -> None:
    code = ("import json; from hwnas.testing import suites\n"
            "cases = suites.cases(only_plugins=True)\n"
            "for role, name in cases: suites.check(role, name)\n"
            "print(json.dumps(cases))")
    res = python(["-c", code], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert {tuple(c) for c in json.loads(res.stdout)} == COMPONENTS


@pytest.mark.slow
def test_plugin_components_are_chosen_on_the_command_line(tmp_path: Path) -> None:
    """Profile with the plugin backend, fit the plugin cost model on that store, search
    with the plugin controller under that model, ingest with the plugin formats."""
    prof = hwnas("profile", "--space", "toy", "--space-opt", "n=3", "--space-opt", "k=3", "--networks", "8",
                 "--backend", "example-torchscript", "--store", "s.sqlite", *FAST_TIMING, cwd=tmp_path)
    (row,) = prof["backends"]
    assert row["backend"] == "example-torchscript" and row["failed"] == 0
    assert row["primitives"] == prof["n_primitives"] > 0 and row["networks"] == 8

    fit = hwnas("fit-cost", "--store", "s.sqlite", "--device", prof["device_fingerprint"], "--backend",
                "example-torchscript", "--model", "example-scaled-sum", "--out", "models", cwd=tmp_path)
    assert fit["models"]["example-scaled-sum"]["n"] > 0  # scored on held-out networks; too few to judge
    assert (tmp_path / "models" / "example-scaled-sum" / "manifest.json").is_file()

    config = {"seed": 0, "search_space": {"type": "toy", "n": 3, "k": 3},
              "controller": {"type": "example-hillclimb", "patience": 3}, "evaluator": {"type": "predictor"},
              "objective": {"type": "hardware", "model": "models/example-scaled-sum"},
              "trainer": {"type": "simple", "steps": 5, "rollouts_per_step": 2, "plot": False}}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(config))
    found = hwnas("search", "search.yaml", "--run-dir", "run", cwd=tmp_path)
    assert found["steps"] == 5 and found["rollouts"] == 10 and found["best"]["perfs"]["latency_ms"] > 0

    (tmp_path / "lat.tsv").write_text("# example-tsv\nconv c8>8 8x8 k3 s1 relu\t0.51\t0.49\nlayer_fc\t0.12\n")
    (tmp_path / "power.txt").write_text("".join(f"{100 + t} {2500 + 10 * t}\n" for t in range(8)))
    got = hwnas("ingest", "--format", "example-tsv", "lat.tsv", "--device", "board", "--store", "board.sqlite",
                "--power", "power.txt", "--power-format", "example-mw", cwd=tmp_path)
    assert got["stored"] == 2 and got["with_energy"] == 2 and got["backend"] == "example-board"
