"""``bench/gpu_check.py`` (``make gpu-check``): without CUDA it refuses in one line (or says
``skipped:`` under ``make bench``); ``--device cpu`` runs the whole pipeline — profile with both
backends, fit, summary JSON — on a tiny mbv2 option set, so the script a GPU machine runs
once is known to work before it gets there."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "bench" / "gpu_check.py")
TINY = ["--space-opt", "resolution=32", "--space-opt", "width=0.35", "--space-opt", "kernels=[3]",
        "--space-opt", "expansions=[3]", "--space-opt", "depths=[1,2]"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_refuses_in_one_line_or_skips(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    proc = _run("--require-gpu", "--out", str(out), "--work", str(tmp_path / "w"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "--device cpu" in lines[0], proc.stderr
    proc = _run("--out", str(out), "--work", str(tmp_path / "w"))
    assert proc.returncode == 0 and proc.stdout.startswith("skipped: no CUDA GPU"), proc.stdout
    assert not out.exists() and not (tmp_path / "w").exists()


@pytest.mark.slow
def test_pipeline_on_cpu_measures_fits_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    proc = _run("--device", "cpu", "--networks", "6", "--skip-tests", "--model", "lut,linear1", *TINY,
                "--work", str(tmp_path / "w"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert [s["step"] for s in res["steps"]] == ["profile", "torch", "fit-cost"]
    assert all(s["rc"] == 0 for s in res["steps"])
    fit = res["fit"]
    assert fit["best_model"] == "linear1" and fit["lut_rmse_ms"] > 0 and fit["best_rmse_ms"] > 0
    assert fit["rmse_gain_vs_naive_sum"] == pytest.approx(fit["lut_rmse_ms"] / fit["best_rmse_ms"], rel=0.02)
    assert 0 <= fit["best_within_10_pct"] <= 100 and fit["n_test"] >= 1
    assert res["table_wall_s"] > 0 and "RMSE gain vs naive sum" in proc.stdout
