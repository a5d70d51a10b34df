"""How repeatable are profiled latencies, and what does profiling cost per primitive?

Runs the primitive set of a space twice, into two separate stores (two independent
jobs, each with its own worker process), and reports per backend:

* the share of primitives whose two medians agree within 5% (goal: >= 90%),
* the median relative difference,
* the per-primitive overhead: export, compile / session creation, timing, total.

Prints a table and writes JSON (default bench/results/profile_repeatability.json).

    python bench/profile_repeatability.py --space mbv2 --space-opt resolution=64 --backend onnxruntime --backend torch
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hwnas.config import build_space, parse_kv
from hwnas.profilers.api import expand_backends
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.runner import ProfileJob
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Store
from hwnas.ui import format_table

TOL = 0.05


def _medians_and_overheads(store_path: Path, backend: str) -> tuple[dict[str, float], list[dict[str, float]]]:
    with Store(store_path) as st:
        rows = st.query(backend=backend, kind="primitive", ok_only=True, latest=True)
    med = {r["target"]: float(r["median_ms"]) for r in rows}
    over = [dict(r["extra"].get("overhead_s") or {}) for r in rows]
    return med, over


def compare(a: dict[str, float], b: dict[str, float], tol: float = TOL) -> dict[str, Any]:
    """Share of common keys whose medians differ by at most ``tol`` (relative to their mean)."""
    keys = sorted(set(a) & set(b))
    rel = [abs(a[k] - b[k]) / ((a[k] + b[k]) / 2) for k in keys if a[k] + b[k] > 0]
    return {"n": len(keys), "within_5pct": sum(r <= tol for r in rel) / len(rel) if rel else None,
            "median_rel_diff": statistics.median(rel) if rel else None, "max_rel_diff": max(rel) if rel else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="mbv2")
    ap.add_argument("--space-opt", action="append", metavar="KEY=VALUE")
    ap.add_argument("--backend", action="append", help="repeatable, or 'all' (default: onnxruntime)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-repeats", type=int, default=5)
    ap.add_argument("--max-repeats", type=int, default=50)
    ap.add_argument("--time-budget", type=float, default=5.0)
    ap.add_argument("--sessions", type=int, default=3, help="fresh sessions per item (samples pooled)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "profile_repeatability.json"))
    args = ap.parse_args(argv)

    opts = parse_kv(args.space_opt, "--space-opt")
    space = build_space(args.space, opts)
    backends = expand_backends(args.backend)
    proto = TimingProtocol(min_repeats=args.min_repeats, max_repeats=args.max_repeats, threads=args.threads,
                           time_budget_s=args.time_budget, sessions=args.sessions)
    results: dict[str, Any] = {"space": args.space, "space_options": space.options_dict(),
                               "n_primitives": len(space.primitives()), "timing": proto.to_dict(), "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        stores = [Path(tmp) / "run1.sqlite", Path(tmp) / "run2.sqlite"]
        walls = []
        for path in stores:
            t0 = time.perf_counter()
            with Store(path) as st:
                ProfileJob(st, space, ProfileRequest(backends=tuple(backends), protocol=proto)).run()
            walls.append(time.perf_counter() - t0)
        results["wall_s"] = walls
        rows = []
        for b in backends:
            m1, over = _medians_and_overheads(stores[0], b)
            m2, _ = _medians_and_overheads(stores[1], b)
            cmp = compare(m1, m2)
            stages = {s: statistics.median(o[s] for o in over if s in o) if any(s in o for o in over) else None
                      for s in ("export", "compile", "timing", "total")}
            results["backends"][b] = {**cmp, "overhead_s": stages}
            rows.append({"backend": b, "primitives": cmp["n"], "within_5pct": cmp["within_5pct"],
                         "median_rel_diff": cmp["median_rel_diff"], "export_s": stages["export"],
                         "compile_s": stages["compile"], "timing_s": stages["timing"], "total_s": stages["total"]})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    sys.stdout.write(f"{args.space} {opts or ''}: {results['n_primitives']} primitives, two runs "
                     f"({walls[0]:.0f} s, {walls[1]:.0f} s)\n")
    sys.stdout.write(format_table(rows) + f"\n(goal: within_5pct >= 0.9) -> {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
