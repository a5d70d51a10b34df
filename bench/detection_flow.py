"""Benchmark: the DetNAS-style detection flow on the synthetic set, from nothing.

Why: a user must be able to check the whole detection toolchain on a CPU before renting
GPUs: write the synthetic set (shapes on textured backgrounds, VOC + COCO layouts; small
data), train the mbv2 supernet with the SSDLite head, search with evolution, derive the
best backbone, train it, and test it - mAP@0.5 (VOC rules), COCO mAP@[.5:.95]
(pycocotools), and a trivial baseline measured on the same test images (each class's
mean training box, scored by class frequency). The hardware objective here is a
per-primitive latency table measured in this run (torch eager, batch 1, one thread): the
prediction is the naive sum over the derived detector's primitives, backbone and head,
printed beside the detector's measured end-to-end latency (both as CPU time of the timing
thread; wall time too). Run alone on the machine:

    .venv/bin/python bench/detection_flow.py [--config configs/detnas-voc-cpu.yaml]

Writes bench/results/detection_flow.json; the run folder (data, checkpoints) is --work.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def time_module(module: torch.nn.Module, x: torch.Tensor, repeats: int = 30) -> dict[str, float]:
    """Median wall ms and median CPU ms (this thread's CPU time) of ``module(x)`` (eval, no
    grad) after warm-up. On a loaded machine a run longer than a scheduler slice is
    preempted and its wall time inflates many-fold while its CPU time does not, so the
    comparison with the per-primitive table uses CPU time; wall time is reported beside it."""
    module.eval()
    wall, cpu = [], []
    with torch.no_grad():
        for _ in range(5):
            module(x)
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            module(x)
            cpu.append((time.thread_time() - c0) * 1e3)
            wall.append((time.perf_counter() - t0) * 1e3)
    return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}


class LutPricer:
    """Latency table keyed by primitive, measured on first sight; price = naive sum."""

    def __init__(self) -> None:
        self.table: dict[str, float] = {}

    def __call__(self, items: Sequence[Any]) -> float:
        from hwnas.nn.builders import build_primitive

        total = 0.0
        for p in items:
            if p.key not in self.table:
                torch.manual_seed(0)
                self.table[p.key] = time_module(build_primitive(p), torch.randn(1, p.c_in, p.h, p.w), 20)["cpu_ms"]
            total += self.table[p.key]
        return total


def main() -> None:
    from hwnas.search.detection.stages import run_flow
    from hwnas.search.detection.synth import SynthSpec, write_synthetic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/detnas-voc-cpu.yaml")
    ap.add_argument("--work", default="runs/detection-cpu", help="run folder (data + checkpoints); emptied first")
    ap.add_argument("--out", default=str(RESULTS / "detection_flow.json"))
    ap.add_argument("--images", default="2000,100,200", help="synthetic train,val,test images (generating is cheap; "
                                                            "more training images cost no extra steps)")
    ap.add_argument("--resume", action="store_true", help="keep --work: finished stages (and the data) are reused")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = ROOT / args.work
    if not args.resume:
        shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    raw = yaml.safe_load((ROOT / args.config).read_text())
    n_train, n_val, n_test = (int(v) for v in args.images.split(","))
    data = work / "data"
    if not (data / "voc" / "ImageSets" / "Main" / "test.txt").is_file():
        write_synthetic(data, SynthSpec(n_train=n_train, n_val=n_val, n_test=n_test, size=96))
    t_data = time.perf_counter() - t0
    raw["dataset"]["root"] = str(data / "voc")
    pricer = LutPricer()
    res = run_flow(raw, work / "run", ROOT / Path(args.config).parent, pricer=pricer)
    wall = time.perf_counter() - t0
    from hwnas.search.detection.stages import build_run, final_stage, supernet_stage

    run = build_run(raw, ROOT / Path(args.config).parent)
    det = final_stage(run, supernet_stage(run, work / "run"), res["arch"], work / "run")
    x = torch.randn(1, 3, run.dataset.resolution, run.dataset.resolution)
    measured = time_module(det, x, 50)
    stages = {k: json.loads((work / "run" / f"{k}.json").read_text()).get("wall_s") for k in ("supernet", "search", "final")}
    report = {"config": args.config, "data": f"synthetic detection set (small data: {args.images} train/val/test images of 96 px, 3 classes)",
              "wall_s_total": wall, "wall_s_data": t_data, "wall_s_stages": stages, "arch": res["arch"],
              "test_map50": res["test"]["map50"], "test_ap50_per_class": res["test"]["ap50_per_class"],
              "test_coco_map": res["test"].get("coco_map"), "test_coco_map50": res["test"].get("coco_map50"),
              "baseline": "mean training box per class, constant score = class frequency",
              "baseline_map50": res["baseline_mean_box"]["map50"], "classes": res["classes"],
              "predicted_latency_ms": res.get("predicted_latency_ms"), "measured_latency_ms": measured["cpu_ms"],
              "measured_wall_ms": measured["wall_ms"],
              "latency_protocol": "torch eager, CPU, batch 1, 1 thread, median of this thread's CPU time (wall time "
                                  "beside it: preemption on the shared machine inflates it); prediction = sum of "
                                  "per-primitive CPU-time medians measured in this run", "search_best": res["search_best"],
              "threads": torch.get_num_threads()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    rows = [("stage wall s (supernet/search/final)", " / ".join(f"{v:.0f}" for v in stages.values())),
            ("total wall s", f"{wall:.0f}"), ("derived arch", res["arch"]),
            ("test mAP@0.5 (VOC rules)", f"{report['test_map50']:.3f}"),
            ("test COCO mAP@[.5:.95]", f"{report['test_coco_map'] or 0:.3f}"),
            ("baseline mAP@0.5 (mean box)", f"{report['baseline_map50']:.3f}"),
            ("latency predicted / measured CPU ms", f"{report['predicted_latency_ms']:.2f} / {measured['cpu_ms']:.2f}"),
            ("measured wall ms (shared machine)", f"{measured['wall_ms']:.2f}")]
    for k, v in rows:
        print(f"{k:40s} {v}")
    print("(synthetic, small data; timings on a shared 2-core machine are inflated)")


if __name__ == "__main__":
    main()
