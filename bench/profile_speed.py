"""Wall time of the basic profile, ``hwnas profile --space mbv2 --device cpu``, from nothing.

Each run is a fresh process (interpreter start, imports, the measuring worker's start
included) writing a fresh store in a temporary folder, so nothing is reused between runs.
Besides the wall time it records the CPU seconds of the whole process tree (on a loaded
machine the wall time mostly measures the other load; CPU seconds much less so), where the
worker's time went by stage (export, session creation, timed runs: the ``overhead_s`` the
store keeps per item) and the load average before and after each run.

``--baseline REV`` also runs the same command from the package as it was at git revision
REV (``git archive`` into a temporary folder, put first on PYTHONPATH), interleaved with
the current code's runs so both see the same load.

  python bench/profile_speed.py --runs 5                      # the current code
  python bench/profile_speed.py --runs 3 --baseline 3f3fcd2   # and the code before the speed-up
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GOAL_S = 10.0


def _stages(store: Path) -> dict[str, float]:
    """Sum over the store's rows of the worker's per-item stage times (seconds)."""
    out: dict[str, float] = {"items": 0.0}
    with sqlite3.connect(store) as db:
        for (extra,) in db.execute("SELECT extra FROM measurements"):
            out["items"] += 1
            for stage, secs in ((json.loads(extra or "{}").get("overhead_s")) or {}).items():
                out[stage] = out.get(stage, 0.0) + float(secs)
    return {k: round(v, 3) for k, v in out.items()}


def one_run(space: str, pythonpath: str | None) -> dict[str, Any]:
    """One ``hwnas profile`` from nothing; wall and CPU seconds, stages, load average."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="profile-speed-") as tmp:
        store = Path(tmp) / "store.sqlite"
        cmd = [sys.executable, "-m", "hwnas.cli", "profile", "--space", space, "--device", "cpu", "--store", str(store)]
        load0 = os.getloadavg()[0]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load1_before": round(load0, 2),
                "load1_after": round(os.getloadavg()[0], 2), "stages_s": _stages(store)}


def _baseline_tree(rev: str, into: Path) -> str:
    """The package as it was at ``rev``, unpacked under ``into`` (read-only use of git)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "hwnas"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=data, check=True)
    return str(into)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    return {"runs": len(runs), "median_wall_s": round(statistics.median(walls), 3), "min_wall_s": min(walls),
            "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "median_load1": round(statistics.median(r["load1_before"] for r in runs), 2)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="runs per version (default: %(default)s)")
    p.add_argument("--space", default="mbv2")
    p.add_argument("--baseline", metavar="REV", help="also time the package as it was at this git revision")
    p.add_argument("--out", default=str(RESULTS / "profile_speed.json"))
    args = p.parse_args(argv)
    versions: dict[str, list[dict[str, Any]]] = {"current": []}
    with tempfile.TemporaryDirectory(prefix="profile-speed-base-") as base_dir:
        paths: dict[str, str | None] = {"current": str(ROOT)}
        if args.baseline:
            paths[f"baseline {args.baseline}"] = _baseline_tree(args.baseline, Path(base_dir))
            versions[f"baseline {args.baseline}"] = []
        for i in range(args.runs):
            for name, path in paths.items():  # interleaved: both versions see the same load
                r = one_run(args.space, path)
                versions[name].append(r)
                st = r["stages_s"]
                print(f"{name:22s} run {i + 1}: {r['wall_s']:6.2f} s wall {r['cpu_s']:6.2f} s CPU  load {r['load1_before']:5.2f}"
                      f"  export {st.get('export', 0):5.2f}  sessions {st.get('compile', 0):5.2f}  "
                      f"timed runs {st.get('timing', 0):5.2f}")
    summary = {name: _summary(runs) for name, runs in versions.items()}
    print(f"\n{'version':22s} {'median wall s':>13s} {'min wall s':>10s} {'median CPU s':>12s} {'load1':>6s}")
    for name, s in summary.items():
        print(f"{name:22s} {s['median_wall_s']:13.2f} {s['min_wall_s']:10.2f} {s['median_cpu_s']:12.2f} "
              f"{s['median_load1']:6.2f}")
    quiet = all(r["load1_before"] < 0.5 for r in versions["current"])
    print(f"goal: <= {GOAL_S:g} s wall on an idle machine"
          + ("" if quiet else " (this machine was NOT idle: wall times include other processes' load)"))
    out = {"command": f"hwnas profile --space {args.space} --device cpu --store <fresh>", "goal_wall_s": GOAL_S,
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "idle_during_runs": quiet},
           "summary": summary, "runs": versions}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
