"""NAS-Bench-101: count the unique cells (published: 423,624) by enumeration.

Every upper-triangular DAG of 2..7 vertices with at most 9 edges whose vertices all lie on
an input->output path, under every labelling of its interior vertices with 3 operations,
is reduced to an exact canonical code (the minimum over all interior renumberings of a
64-bit (matrix, labels) code, vectorised with numpy); distinct codes are counted.

Rows (all measured in this run): the count in one process (the baseline), the same on
``--processes`` worker processes, and, unless ``--no-hash``, the number of distinct
NAS-Bench-101 graph hashes (``NB101Space.arch_hash``) over one cell per class: equal to
the class count exactly when that hash, the key of a NAS-Bench-101 table, has no
collision. Pure combinatorics: no data set is read. Times are wall seconds on this
machine (inflated when other jobs share the CPUs).

  python bench/nb101_count.py                       # writes bench/results/nb101_count.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
PUBLISHED = 423_624


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2, help="worker processes for the parallel rows")
    ap.add_argument("--vertices", type=int, default=7, help="most vertices of a cell")
    ap.add_argument("--max-edges", type=int, default=9, help="most edges of a cell")
    ap.add_argument("--no-hash", action="store_true", help="skip the benchmark-hash row (the slowest)")
    ap.add_argument("--out", type=Path, default=RESULTS / "nb101_count.json")
    args = ap.parse_args(argv)
    if args.processes < 1 or not 2 <= args.vertices <= 7 or args.max_edges < 1:
        ap.error("--processes >= 1, --vertices in 2..7, --max-edges >= 1")

    from hwnas.search.spaces.nb101_graph import hash_classes, unique_codes

    rows = []
    codes = {}
    for procs in dict.fromkeys([1, args.processes]):
        t0, c0 = time.perf_counter(), time.process_time()
        codes = unique_codes(args.vertices, args.max_edges, 3, procs)
        wall = time.perf_counter() - t0
        per_v = {v: len(c) for v, c in codes.items()}
        rows.append({"method": "canonical code", "processes": procs, "count": sum(per_v.values()),
                     "per_vertices": per_v, "wall_s": round(wall, 2),
                     "main_cpu_s": round(time.process_time() - c0, 2)})
    if not args.no_hash:
        t0, c0 = time.perf_counter(), time.process_time()
        n = hash_classes(codes, 3, args.processes)
        rows.append({"method": "NB101 graph hash (one cell per class)", "processes": args.processes, "count": n,
                     "wall_s": round(time.perf_counter() - t0, 2), "main_cpu_s": round(time.process_time() - c0, 2)})

    print(f"NAS-Bench-101 unique cells: <= {args.vertices} vertices, <= {args.max_edges} edges, 3 ops "
          f"(published for 7 / 9: {PUBLISHED:,}); {os.cpu_count()} CPUs here, shared")
    print(f"{'method':40s} {'procs':>5s} {'count':>9s} {'wall s':>8s}")
    for r in rows:
        print(f"{r['method']:40s} {r['processes']:5d} {r['count']:9,d} {r['wall_s']:8.2f}")
    ok = all(r["count"] == PUBLISHED for r in rows) if (args.vertices, args.max_edges) == (7, 9) else None
    if ok is not None:
        print("matches the published count" if ok else "DOES NOT match the published count")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"vertices": args.vertices, "max_edges": args.max_edges, "ops": 3,
                                    "published": PUBLISHED, "matches_published": ok, "cpus": os.cpu_count(),
                                    "note": "wall times on a shared 2-core machine (inflated under load)",
                                    "rows": rows}, indent=1))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0 if ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
