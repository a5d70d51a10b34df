"""The transformer and hybrid zoo families on this CPU: ONNX op types and ONNX Runtime latency.

For every registered zoo variant of the families ViT, DeiT, Swin, ConvNeXt, MobileViT,
EfficientFormer and LeViT (and, measured in the same run as the comparison baseline, the
convolutional ``mobilenet_v2-w1.0-r224`` and ``resnet18-r224``): export with hwnas's exporter
(opset 17), import with hwnas's ONNX import, count op types in both, and time the model with
ONNX Runtime on one thread under the project's timing protocol (3 fresh sessions, samples
pooled; the estimate is the protocol's default CPU-time estimator, the wall median beside it).
Why: the any-model bench must be able to time every zoo model in reasonable time (goal:
each <= ~250 ms here), and the kernel work needs to know which ops each family exports.

    .venv/bin/python bench/zoo_modern.py [--only NAME ...] [--out bench/results/zoo_modern.json]

Results are written after each model; a rerun skips the models already in --out (resumable),
``--fresh`` starts over. Weights are random (latency does not depend on them).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAMILIES = ("ViT", "DeiT", "Swin", "ConvNeXt", "MobileViT", "EfficientFormer", "LeViT")
BASELINES = ("mobilenet_v2-w1.0-r224", "resnet18-r224")
GOAL_MS = 250.0


def time_onnx(data: bytes, shape: tuple[int, ...], sessions: int = 3) -> dict[str, Any]:
    """ORT CPU, 1 thread: the protocol's estimate over ``sessions`` fresh sessions, pooled."""
    import numpy as np

    from hwnas.nn.export import INPUT_NAME
    from hwnas.profilers.backends.base import OnnxTarget
    from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
    from hwnas.profilers.timing import TimingProtocol, measure

    proto = TimingProtocol(threads=1, sessions=sessions)
    backend = OnnxRuntimeBackend("cpu", threads=1)
    target = OnnxTarget(data, ((INPUT_NAME, tuple(shape), 1),), "zoo")
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(sessions):
        run = backend.prepare(target)
        res = measure(run.run, proto, cpu_timer=time.thread_time)
        wall += res.samples_ms
        cpu += res.cpu_ms
    return {"estimate_ms": round(proto.estimate(wall, cpu), 3), "wall_median_ms": round(float(np.median(wall)), 3),
            "samples": len(wall)}


def one(name: str) -> dict[str, Any]:
    import onnx

    from hwnas import registry
    from hwnas.nn.onnx_graph import import_onnx
    from hwnas.nn.torch_import import export_module

    entry = registry.get("zoo", name)
    model = entry.build()
    t0 = time.perf_counter()
    data = export_module(model, model.input_shape, name)
    export_s = time.perf_counter() - t0
    raw = Counter(n.op_type for n in onnx.load_from_string(data).graph.node)
    imported = import_onnx(data, name=name)
    ops = Counter(n.op_type for n in imported.graph.nodes)
    row = {"name": name, "family": entry.family, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           "export_s": round(export_s, 1), "raw_ops": dict(raw.most_common()), "imported_ops": dict(ops.most_common())}
    row.update(time_onnx(imported.data, model.input_shape))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="variant names (default: every variant of the families + baselines)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "zoo_modern.json"))
    ap.add_argument("--fresh", action="store_true", help="ignore the results already in --out")
    args = ap.parse_args()

    import os

    from hwnas import registry
    from hwnas.ui import format_table

    names = args.only or [*BASELINES, *(e.name for e in registry.list("zoo") if e.obj.family in FAMILIES)]
    out = Path(args.out)
    done: dict[str, Any] = {} if args.fresh or not out.exists() else json.loads(out.read_text()).get("models", {})
    for name in names:
        if name in done:
            continue
        done[name] = one(name)
        print(f"{name:30s} {done[name]['estimate_ms']:9.2f} ms", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"note": "random weights; ONNX Runtime CPU, 1 thread, 3 sessions; "
                                           f"load average at the end {os.getloadavg()[0]:.1f} (shared machine: "
                                           "timings inflated when high)", "goal_ms": GOAL_MS,
                                   "models": done}, indent=1))
    rows = [{"model": r["name"], "family": r["family"], "params M": r["params_m"],
             "nodes": sum(r["imported_ops"].values()), "ORT ms (cpu est.)": r["estimate_ms"],
             "wall median ms": r["wall_median_ms"], f"<= {GOAL_MS:g} ms": "yes" if r["estimate_ms"] <= GOAL_MS else "NO"}
            for r in done.values()]
    print(format_table(rows, digits=3))
    print(f"load average now {os.getloadavg()[0]:.1f}; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
