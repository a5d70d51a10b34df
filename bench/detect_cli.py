"""Benchmark: the detection flow through the ``hwnas`` command, priced from a store.

Why: ``bench/detection_flow.py`` checks the library with its own torch-eager latency
table; this one checks what a user types - ``hwnas detect --synth`` (writes the synthetic
set; small data), ``hwnas profile --detector`` (backbone + head primitives into a cost
store, onnxruntime, the default timing protocol), ``hwnas detect`` with ``hardware:`` on
that store, and ``hwnas detect --measure`` (the derived detector exported to ONNX and
timed end to end on the same store, device and backend). The comparison baselines come
from the same run: the trivial detector's mAP (each class's mean training box) and the
measured end-to-end latency beside the summed-primitive prediction. Run:

    .venv/bin/python bench/detect_cli.py [--config configs/detnas-voc-cpu.yaml] [--synth 2000]

Writes bench/results/detect_cli.json; the run folder (data, store, checkpoints) is --work.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def hwnas(*argv: str) -> dict[str, Any]:
    """One ``hwnas`` command in this process; its --json output."""
    from hwnas.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([*argv, "--json"])
    if rc != 0:
        raise SystemExit(f"hwnas {' '.join(argv)} exited {rc}")
    return dict(json.loads(buf.getvalue()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/detnas-voc-cpu.yaml")
    ap.add_argument("--work", default="runs/detect-cli", help="run folder; emptied first unless --resume")
    ap.add_argument("--synth", default="2000", help="synthetic training images (val and test: a tenth each)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "detect_cli.json"))
    args = ap.parse_args()
    work = ROOT / args.work
    if not args.resume:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((ROOT / args.config).read_text())
    raw["dataset"]["root"] = "data/voc"  # relative to the copy below
    raw["hardware"] = {"store": "det.sqlite", "device": "cpu", "backend": "onnxruntime"}
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    run, walls = str(work / "run"), {}
    t0 = time.perf_counter()
    hwnas("detect", str(cfg), "--run-dir", run, "--synth", args.synth, "--stop-after", "supernet")
    walls["data + supernet"], t0 = time.perf_counter() - t0, time.perf_counter()
    prof = hwnas("profile", "--detector", str(cfg), "--device", "cpu", "--backend", "onnxruntime",
                 "--store", str(work / "det.sqlite"))
    walls["profile --detector"], t0 = time.perf_counter() - t0, time.perf_counter()
    res = hwnas("detect", str(cfg), "--run-dir", run, "--measure")
    walls["search + final + test + measure"] = time.perf_counter() - t0
    report = {"config": args.config, "data": f"synthetic detection set (small data: {args.synth} training images "
                                             "of 96 px, a tenth as many val and test; 3 classes)",
              "wall_s": walls, "primitives_profiled": prof["n_primitives"], "arch": res["arch"],
              "test_map50": res["test"]["map50"], "test_coco_map": res["test"].get("coco_map"),
              "test_ap50_per_class": res["test"]["ap50_per_class"], "classes": res["classes"],
              "baseline": "mean training box per class, constant score = class frequency",
              "baseline_map50": res["baseline_mean_box"]["map50"],
              "predicted_latency_ms": res["predicted_latency_ms"], "measured_latency_ms": res["measured_latency_ms"],
              "measured_on": res["measured_on"],
              "prediction": "naive sum of the store's per-primitive medians (onnxruntime, batch 1, 1 thread)"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    rows = [*((f"wall s: {k}", f"{v:.0f}") for k, v in walls.items()), ("derived arch", res["arch"]),
            ("test mAP@0.5 (VOC rules)", f"{report['test_map50']:.3f}"),
            ("test COCO mAP@[.5:.95]", f"{report['test_coco_map'] or 0:.3f}"),
            ("baseline mAP@0.5 (mean box)", f"{report['baseline_map50']:.3f}"),
            ("primitives in the store", str(report["primitives_profiled"])),
            ("latency predicted / measured ms", f"{report['predicted_latency_ms']:.3f} / "
                                                f"{report['measured_latency_ms']:.3f}")]
    for k, v in rows:
        print(f"{k:40s} {v}")
    print("(synthetic, small data; timings on a shared 2-core machine are inflated)")


if __name__ == "__main__":
    main()
