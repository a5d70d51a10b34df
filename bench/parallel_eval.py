"""Parallel evaluation on Ray: rollouts/s of the ``tune`` evaluator (train from scratch)
with the ``async`` trainer on 1 vs 2 Ray workers, the same budget and the same
architectures (random controller: its draws do not depend on completion order), in one
run on one local Ray instance; then the kill test: SIGKILL a worker mid-evaluation and
check that the search completes with every rollout and nothing lost.

Each task reserves 1 CPU and trains with 1 torch thread, so 2 workers use the 2 cores.
A warm-up search starts the worker processes first (imports, dataset load), so the clock
measures evaluation, not Ray's process start. Goal: >= 1.6x speedup.
Run alone on the machine: .venv/bin/python bench/parallel_eval.py
Prints a table, writes bench/results/parallel_eval.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from hwnas.search.api import run_search  # noqa: E402
from hwnas.ui import format_table  # noqa: E402

GOAL = 1.6


def config(path: Path, steps: int, workers: int, **trainer: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "seed": 0, "run": {"device": "cpu"},
        "dataset": {"type": "digits", "resolution": 16, "channels": 1},
        "search_space": {"type": "nb201", "channels": 8, "cells_per_stage": 1, "resolution": 16, "in_channels": 1},
        "controller": {"type": "random"},
        "evaluator": {"type": "tune", "epochs": 1, "batch_size": 64, "bn_recalibrate": 2},
        "objective": {"type": "classification"},
        "trainer": {"type": "async", "steps": steps, "workers": workers, "cpus_per_task": 1.0,
                    "checkpoint_every": 0, "plot": False, **trainer}}))
    return path


def timed(tmp: Path, steps: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = run_search(config(tmp / f"w{workers}.yaml", steps, workers), run_dir=tmp / f"run-w{workers}", restart=True)
    dt = time.perf_counter() - t0
    archs = sorted(r.split(",")[1] for r in (tmp / f"run-w{workers}" / "rollouts.csv").read_text().splitlines()[1:])
    return {"workers": workers, "rollouts": out["rollouts"], "seconds": round(dt, 2),
            "rollouts_per_s": round(out["rollouts"] / dt, 3), "archs": archs,
            "best_accuracy": out["best"]["perfs"]["accuracy"]}


def kill_test(tmp: Path, steps: int, victim_step: int) -> dict[str, Any]:
    """SIGKILL the worker evaluating rollout ``victim_step``; the search must still finish."""
    trace = tmp / "trace"
    trace.mkdir()
    cfg = config(tmp / "kill.yaml", steps, 2, trace_dir=str(trace), checkpoint_every=1)
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(run_search(cfg, run_dir=tmp / "run-kill")))
    t.start()
    deadline = time.time() + 300
    prefix = f"{victim_step}-"
    while time.time() < deadline and not any(p.name.startswith(prefix) for p in trace.iterdir()):
        time.sleep(0.05)
    victim = next(p for p in trace.iterdir() if p.name.startswith(prefix))
    time.sleep(0.5)  # mid-evaluation, not at its very start
    os.kill(int(victim.read_text()), signal.SIGKILL)
    t.join()
    rows = (tmp / "run-kill" / "rollouts.csv").read_text().splitlines()[1:]
    steps_done = sorted(int(r.split(",")[0]) for r in rows)
    pids = {p.name.split("-")[1] for p in trace.iterdir() if p.name.startswith(prefix)}
    return {"steps": steps, "killed_pid": int(victim.read_text()), "killed_rollout": victim_step,
            "rollouts_finished": result.get("rollouts"), "rollouts_in_csv": len(rows),
            "every_rollout_once": steps_done == list(range(steps)), "retried_in_other_worker": len(pids) >= 2,
            "attempt_pids": sorted(int(p) for p in pids)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=16, help="budget of each timed search")
    ap.add_argument("--kill-rollouts", type=int, default=8, help="budget of the kill test")
    args = ap.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run_search(config(tmp / "warm.yaml", 2, 2), run_dir=tmp / "warm")  # start both worker processes
        runs = [timed(tmp, args.rollouts, w) for w in (1, 2)]
        kill = kill_test(tmp, args.kill_rollouts, victim_step=3)
    ray.shutdown()
    same = runs[0]["archs"] == runs[1]["archs"]
    speedup = runs[1]["rollouts_per_s"] / runs[0]["rollouts_per_s"]
    print(format_table([{k: v for k, v in r.items() if k != "archs"} for r in runs],
                       ["workers", "rollouts", "seconds", "rollouts_per_s", "best_accuracy"]))
    print(f"speedup 2 vs 1 workers: {speedup:.2f}x (goal >= {GOAL}x: {'met' if speedup >= GOAL else 'NOT met'}); "
          f"same architectures evaluated: {same}")
    print(f"kill test: killed pid {kill['killed_pid']} on rollout {kill['killed_rollout']}; "
          f"{kill['rollouts_finished']}/{kill['steps']} finished, every rollout once: {kill['every_rollout_once']}, "
          f"retried in another worker: {kill['retried_in_other_worker']}")
    out = ROOT / "bench" / "results" / "parallel_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": [{k: v for k, v in r.items() if k != "archs"} for r in runs],
                               "speedup": round(speedup, 3), "goal": GOAL, "same_archs": same, "kill_test": kill,
                               "python": platform.python_version(), "cpus": os.cpu_count(),
                               "ray": ray.__version__}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
