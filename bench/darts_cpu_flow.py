"""Benchmark: the documented CPU-scale DARTS flow end to end, timed command by command.

Why: the flow (search -> derive -> train -> test with a measured latency) must finish in
under 10 minutes on a 2-core CPU, so anyone can check the whole toolchain before renting
GPUs for the paper-scale configs. It runs exactly the four commands the README shows, each
as its own ``hwnas`` process, and records their wall times and results. Run it alone
on the machine:

    .venv/bin/python bench/darts_cpu_flow.py [--config configs/darts-cifar10-cpu.yaml]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def hwnas(*args: str) -> tuple[float, Any]:
    """Run one hwnas command (JSON output); its wall time and parsed result."""
    exe = Path(sys.executable).parent / "hwnas"
    t0 = time.perf_counter()
    out = subprocess.run([str(exe), *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"hwnas {' '.join(args)} failed: {out.stderr.strip()[-400:]}")
    return wall, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/darts-cifar10-cpu.yaml")
    ap.add_argument("--work", default="runs/darts-cpu", help="run folder (search in WORK, final in WORK-final)")
    ap.add_argument("--out", default=str(RESULTS / "darts_cpu_flow.json"))
    args = ap.parse_args()
    run, final = args.work, args.work + "-final"
    steps: dict[str, float] = {}
    steps["search"], search = hwnas("search", args.config, "--run-dir", run, "--restart")
    steps["derive"], derived = hwnas("derive", run)
    if (ROOT / final / "checkpoint.pt").exists():
        (ROOT / final / "checkpoint.pt").unlink()
    steps["train"], trained = hwnas("train", args.config, "--arch", f"{run}/best.yaml", "--out", final)
    steps["test"], tested = hwnas("test", args.config, "--arch", f"{run}/best.yaml", "--checkpoint",
                                  f"{final}/checkpoint.pt", "--profile")
    total = sum(steps.values())
    ent = search["entropy"]
    rec = {"config": args.config, "threads_env": os.environ.get("OMP_NUM_THREADS", "torch default"),
           "wall_s": {k: round(v, 1) for k, v in steps.items()}, "total_s": round(total, 1),
           "genotype": derived[0]["arch_str"], "entropy_first_last": [ent[0], ent[-1]],
           "entropy_per_epoch": ent, "supernet_valid_accuracy": derived[0]["perfs"].get("supernet_accuracy"),
           "final_epochs": trained["epochs_done"], "final_valid_accuracy": trained["history"][-1].get("valid_accuracy"),
           "test_accuracy": tested["test_accuracy"], "latency_ms": tested["latency_ms"],
           "network_hash": tested["network_hash"]}
    for k, v in rec["wall_s"].items():
        print(f"{k:7s} {v:7.1f} s")
    print(f"total   {total:7.1f} s  ({total / 60:.1f} min); test accuracy {tested['test_accuracy']:.4f}, "
          f"latency {tested['latency_ms']:.3f} ms; entropy {ent[0]:.4f} -> {ent[-1]:.4f}")
    Path(args.out).write_text(json.dumps(rec, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
