"""Coverage of the transformer-era zoo by kernel detection and by a kernel job's predictors.

For every zoo variant of the new families (ViT, DeiT, Swin, ConvNeXt, MobileViT,
EfficientFormer, LeViT): export, import, detect its kernels under this machine's measured
rules, and report the share of its ONNX nodes that end up in a kernel whose family has a
predictor fitted from a kernel job of random networks (never zoo models), and whether
``predict_onnx`` prices the model or refuses it (with the refusal line).

Phases (resumable):

  python bench/kernel_coverage.py job       # kernel job into runs/b-tokens/store.sqlite
  python bench/kernel_coverage.py report    # fit, coverage table, bench/results/kernel_coverage.json

The job's random networks weight the token block families up (they are what this bench is
about); sizes are capped so one network runs in well under a second. Nothing here is a
latency figure: the job's timings only feed the fit, and the coverage does not depend on
them. The baseline column is the naive view (every ONNX node its own kernel, no measured
rules): the share of nodes whose op family the same predictors know.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
FAMILIES = ("ViT", "DeiT", "Swin", "ConvNeXt", "MobileViT", "EfficientFormer", "LeViT")


def cmd_job(args: argparse.Namespace) -> None:
    from hwnas.nn.kernels.synthetic import BLOCKS
    from hwnas.nn.kernels.token_blocks import TOKEN_BLOCKS
    from hwnas.profilers.kernel_job import KernelJob, KernelSampling
    from hwnas.profilers.request import ProfileRequest
    from hwnas.store import Store

    weights = {b: (3.0 if b in TOKEN_BLOCKS else 1.0) for b in BLOCKS}
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    with Store(args.store) as st:
        summary = KernelJob(st, ProfileRequest(networks=args.networks, seed=args.seed, show_progress=False),
                            KernelSampling(rounds=1, adaptive=False, max_macs=args.max_macs, max_resolution=224,
                                           weights=weights)).run()
    print(json.dumps({k: summary.to_dict()[k] for k in ("networks", "measured", "skipped", "failed", "clean",
                                                          "kernels", "wall_s")}))


def _coverage(model: Any, kg: Any, n_nodes: int) -> float:
    from hwnas.cost_models.kernel_features import family

    known = set(model.families_)
    covered = sum(len(k.nodes) + len(k.absorbed) for k in kg.kernels if family(k.prim.op) in known)
    return covered / max(n_nodes, 1)


def _one(model: Any, entry: Any, measure: bool = False) -> dict[str, Any]:
    from hwnas.cost_models.kernel_predict import predict_onnx
    from hwnas.errors import HwnasError
    from hwnas.nn.kernels import FusionRules, detect
    from hwnas.nn.onnx_graph import import_onnx
    from hwnas.nn.torch_import import export_module

    mod = entry.obj.build()
    shape = tuple(mod.input_shape)
    onnx = import_onnx(export_module(mod, shape if len(shape) == 4 else (1, *shape)), name=entry.name)
    n = len(onnx.graph.nodes)
    kg = detect(onnx.graph, model.rules())
    naive = detect(onnx.graph, FusionRules.none(), composites=False)
    row: dict[str, Any] = {"model": entry.name, "family": entry.obj.family, "onnx_nodes": n,
                           "kernels": len(kg.kernels), "coverage": round(_coverage(model, kg, n), 4),
                           "naive_coverage": round(_coverage(model, naive, n), 4)}
    try:
        pred = predict_onnx(model, onnx, naive=measure)
        row["predicted_ms"] = round(pred.total_ms, 3)
        if measure:
            row["naive_ms"] = round(float(pred.naive_ms or 0.0), 3)
            row["measured_ms"] = round(_measure(onnx), 3)
    except HwnasError as exc:
        row["refused"] = str(exc)
    return row


def _measure(onnx: Any, runs: int = 15) -> float:
    """Median of ``runs`` end-to-end runs (1 thread, after 3 warm-up runs): a rough check,
    not the project's timing protocol (bench/any_model.py measures the zoo properly)."""
    import statistics

    import numpy as np

    from hwnas import registry

    sess = registry.build("backend", "onnxruntime", device="cpu", threads=1).session(onnx.data)
    feeds = {k: np.random.default_rng(0).standard_normal(v).astype(np.float32) for k, v in onnx.input_shapes.items()}
    times = []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cmd_report(args: argparse.Namespace) -> None:
    from hwnas import registry
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_model import KernelCostModel
    from hwnas.store import Store

    with Store(args.store, create=False) as st:
        data = load_kernel_data(st, "cpu")
    t0 = time.perf_counter()
    model = KernelCostModel(n_estimators=args.trees).fit_kernels(data)
    fit_s = time.perf_counter() - t0
    load0 = os.getloadavg()[0]
    rows = [_one(model, e, args.measure) for e in registry.list("zoo") if e.obj.family in FAMILIES]
    print(f"{'model':32s} {'nodes':>6s} {'kernels':>7s} {'covered':>8s} {'naive':>6s}  priced"
          + ("   pred/meas  naive/meas" if args.measure else ""))
    for r in rows:
        ratio = (f"   {r['predicted_ms'] / r['measured_ms']:9.2f}  {r['naive_ms'] / r['measured_ms']:10.2f}"
                 if "measured_ms" in r else "")
        print(f"{r['model']:32s} {r['onnx_nodes']:6d} {r['kernels']:7d} {r['coverage']:8.1%} {r['naive_coverage']:6.1%}  "
              f"{'yes' if 'refused' not in r else 'REFUSED: ' + r['refused'][:90]}{ratio}")
    out = {"what": "share of each zoo model's ONNX nodes in a kernel whose family has a predictor, kernel job of "
                   "random networks only (token families weighted x3); not a latency figure",
           "store": str(args.store), "data": data.summary, "fit_s": round(fit_s, 2),
           "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
           "measured_note": "measured_ms (with --measure) is a rough median of 15 runs on this machine as it was, "
                            "not the project's timing protocol; bench/any_model.py measures the zoo properly",
           "families_with_predictor": sorted(model.families_), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kernel_coverage.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / 'kernel_coverage.json'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("phase", choices=("job", "report"))
    ap.add_argument("--store", default=str(Path("runs") / "b-tokens" / "store.sqlite"))
    ap.add_argument("--networks", type=int, default=60)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--max-macs", type=float, default=4e8)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--measure", action="store_true", help="also time each model end to end (rough, see JSON)")
    args = ap.parse_args()
    {"job": cmd_job, "report": cmd_report}[args.phase](args)


if __name__ == "__main__":
    main()
