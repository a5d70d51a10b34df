"""Why small models are over-predicted: what ONNX Runtime's per-node times include that a
whole run does not, measured per model, small and large, within one process.

For each model (zoo definitions, exported once), sessions with and without the runtime's
profiler alternate (so other load hits both alike), each timing ``--runs`` single runs by
the thread's CPU time (robust to other processes, unlike wall time). From the profiler's
own trace, per run: the ``model_run`` span and the sum of the node (kernel) spans. Reported
per model, medians over runs:

* ``sum_nodes / e2e``: the per-node times a kernel predictor learns from, summed, against
  the model's end-to-end time without the profiler (what is predicted);
* ``profiler_us_per_node``: (profiled run - plain run) / executed nodes — what the profiler
  itself adds to every node it times;
* ``gap_us_per_node``: (model_run span - sum of node spans) / nodes — the executor's own
  per-node dispatch time, inside a run but outside every node's span;
* the reorder nodes' (NCHWc layout changes) count and share of the node time.

This is diagnostics on zoo models (evaluation only: nothing here is fitted).

  python bench/small_model_overhead.py                  # the default small and large models
  python bench/small_model_overhead.py --models mobilenet_v3_small-w0.75-r160 resnet18-r160
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

SMALL = ("mobilenet_v3_small-w0.75-r160", "mobilenet_v1-w0.5-r160", "shufflenet_v2-w0.5-r224", "mnasnet_a1-w0.5-r224",
         "mobilenet_v2-w0.5-r160")
LARGE = ("mobilenet_v2-w1.0-r224", "resnet18-r160", "efficientnet_b0-r224")
SUFFIX = "_kernel_time"


def _onnx(name: str, zoo_dir: Path) -> bytes:
    from hwnas import registry
    from hwnas.nn.torch_import import export_module

    f = zoo_dir / f"{name}.onnx"
    if not f.exists():
        m = registry.get("zoo", name).build()
        zoo_dir.mkdir(parents=True, exist_ok=True)
        f.write_bytes(export_module(m, m.input_shape, name))
    return f.read_bytes()


def _session(data: bytes, prefix: str | None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if prefix:
        so.enable_profiling = True
        so.profile_file_prefix = prefix
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


def _timed(sess: Any, runs: int, warmup: int = 10) -> tuple[list[float], list[float]]:
    """Thread CPU ms and wall ms of each of ``runs`` single runs (after a warm-up)."""
    inp = sess.get_inputs()[0]
    x = {inp.name: np.random.default_rng(0).standard_normal([int(d) for d in inp.shape]).astype(np.float32)}
    names = [o.name for o in sess.get_outputs()]
    for _ in range(warmup):
        sess.run(names, x)
    cpu, wall = [], []
    for _ in range(runs):
        c0, t0 = time.thread_time(), time.perf_counter()
        sess.run(names, x)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    return cpu, wall


def _trace(path: str, runs: int) -> dict[str, Any]:
    """Per run of the last ``runs``: model_run span, sum of node spans, node count; and
    per node op type the summed span (reorders apart)."""
    events = json.loads(Path(path).read_text())
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[-runs:]
    nodes = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith(SUFFIX)]
    per_run: list[tuple[float, float, int, float]] = []
    for t0, t1 in spans:
        inside = [e for e in nodes if t0 <= e["ts"] <= t1]
        reo = sum(e["dur"] for e in inside if str((e.get("args") or {}).get("op_name", "")).startswith("Reorder"))
        n_reo = sum(1 for e in inside if str((e.get("args") or {}).get("op_name", "")).startswith("Reorder"))
        per_run.append((t1 - t0, sum(e["dur"] for e in inside), len(inside), reo + 1e-9 * n_reo))
    return {"model_run_us": [r[0] for r in per_run], "sum_nodes_us": [r[1] for r in per_run],
            "nodes": per_run[0][2] if per_run else 0, "reorder_us": [r[3] for r in per_run],
            "reorders": sum(1 for e in nodes[: per_run[0][2]] if str((e.get("args") or {}).get("op_name", ""))
                            .startswith("Reorder")) if per_run else 0}


def measure_model(name: str, data: bytes, runs: int, sessions: int) -> dict[str, Any]:
    """Plain and profiled sessions, alternating. The profiler's spans are wall-clock, so
    they are compared with wall-clock runs, each at its least disturbed run (the minimum:
    other load only ever adds); the profiler's own cost is a CPU-time difference."""
    plain_cpu: list[float] = []
    plain_wall: list[float] = []
    prof_cpu: list[float] = []
    best: tuple[float, float, float] = (float("inf"), 0.0, 0.0)  # (model_run, sum_nodes, reorder) of the fastest run
    nodes = reorders = 0
    with tempfile.TemporaryDirectory(prefix="hwnas-small-") as tmp:
        for s in range(sessions):
            c, w = _timed(_session(data, None), runs)
            plain_cpu += c
            plain_wall += w
            sess = _session(data, str(Path(tmp) / f"s{s}"))
            prof_cpu += _timed(sess, runs)[0]
            tr = _trace(sess.end_profiling(), runs)
            for mr, sn, ro in zip(tr["model_run_us"], tr["sum_nodes_us"], tr["reorder_us"]):
                if mr < best[0]:
                    best = (mr, sn, ro)
            nodes, reorders = tr["nodes"], tr["reorders"]
    e2e_wall = min(plain_wall)
    e2e_cpu = statistics.median(plain_cpu)
    mr, sn, ro = best[0] / 1000.0, best[1] / 1000.0, best[2] / 1000.0
    return {"model": name, "e2e_ms": round(e2e_wall, 4), "e2e_cpu_median_ms": round(e2e_cpu, 4),
            "profiled_cpu_median_ms": round(statistics.median(prof_cpu), 4), "model_run_span_ms": round(mr, 4),
            "sum_nodes_ms": round(sn, 4), "nodes": nodes, "reorders": reorders,
            "sum_nodes_over_e2e": round(sn / e2e_wall, 4),
            "profiler_us_per_node": round((statistics.median(prof_cpu) - e2e_cpu) * 1000.0 / max(nodes, 1), 3),
            "gap_us_per_node": round((mr - sn) * 1000.0 / max(nodes, 1), 3),
            "dispatch_us_per_node": round((e2e_wall - sn) * 1000.0 / max(nodes, 1), 3),
            "reorder_share": round(ro / max(sn, 1e-9), 4)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=[*SMALL, *LARGE])
    p.add_argument("--runs", type=int, default=40, help="timed runs per session (default: %(default)s)")
    p.add_argument("--sessions", type=int, default=3, help="sessions of each kind, alternating (default: %(default)s)")
    p.add_argument("--zoo-dir", default=str(ROOT / "runs" / "any-model" / "zoo"))
    p.add_argument("--out", default=str(RESULTS / "small_model_overhead.json"))
    args = p.parse_args(argv)
    rows = []
    cols = ("e2e_ms", "sum_nodes_ms", "sum_nodes_over_e2e", "nodes", "profiler_us_per_node", "gap_us_per_node",
            "dispatch_us_per_node", "reorders", "reorder_share")
    print(f"{'model':30s} " + " ".join(f"{c[:12]:>12s}" for c in cols))
    for name in args.models:
        r = measure_model(name, _onnx(name, Path(args.zoo_dir)), args.runs, args.sessions)
        rows.append(r)
        print(f"{name:30s} " + " ".join(f"{r[c]:12.4g}" for c in cols), flush=True)
    load = os.getloadavg()
    out = {"what": "per-node (profiled) times vs whole runs, ONNX Runtime CPU, 1 thread, thread CPU time",
           "load_average_after": [round(v, 2) for v in load], "runs": args.runs, "sessions": args.sessions,
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"load average {load[0]:.2f} (timings on a loaded machine are inflated); wrote {args.out}")


if __name__ == "__main__":
    main()
