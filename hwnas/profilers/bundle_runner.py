"""Stand-alone runner of an hwnas offline bundle (copied into the bundle as run_bundle.py).

Needs only Python 3, numpy and onnxruntime, so it runs on boards and machines where
hwnas cannot be installed. It times every item of manifest.json with the bundle's
timing settings and writes a results file in the ``hwnas-results v1`` CSV format
(docs/offline-results.md) for ``hwnas ingest``. A failing item becomes a row with its
error; the run goes on.

    python run_bundle.py --device pixel3-cpu [--out results.csv] [--threads 4]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time


def time_item(sess, feed, warmup: int, min_repeats: int, max_repeats: int, min_time_ms: float,
              budget_s: float, rel_tol: float):
    """Adaptive timing like hwnas: repeat until the median settles or the budget ends."""
    start = time.perf_counter()
    for _ in range(warmup):
        sess.run(None, feed)
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            sess.run(None, feed)
        dt = time.perf_counter() - t0
        if dt * 1000.0 >= min_time_ms or number >= 1_000_000:
            break
        number *= 2
    samples = [dt * 1000.0 / number]
    medians = [samples[0]]
    while len(samples) < max_repeats:
        if len(samples) >= min_repeats:
            last = medians[-3:]
            if len(last) == 3 and all(abs(m - last[-1]) <= rel_tol * last[-1] for m in last):
                break
            if time.perf_counter() - start > budget_s:
                break
        t0 = time.perf_counter()
        for _ in range(number):
            sess.run(None, feed)
        samples.append((time.perf_counter() - t0) * 1000.0 / number)
        medians.append(statistics.median(samples))
    return samples


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Run an hwnas offline bundle with onnxruntime.")
    ap.add_argument("--bundle", default=here, help="bundle folder (default: this script's folder)")
    ap.add_argument("--device", default="offline", help="device name written into the results file")
    ap.add_argument("--out", default=None, help="results CSV (default: BUNDLE/results.csv)")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the bundle's)")
    ap.add_argument("--providers", default="CPUExecutionProvider", help="comma-separated onnxruntime providers")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    with open(os.path.join(args.bundle, "manifest.json")) as fh:
        manifest = json.load(fh)
    if manifest.get("format") != "hwnas-bundle" or manifest.get("version") != 1:
        sys.stderr.write("not an hwnas-bundle v1 manifest\n")
        return 2
    st = manifest.get("settings", {})
    threads = args.threads or int(st.get("threads", 1))
    out_path = args.out or os.path.join(args.bundle, "results.csv")
    rows = []
    for item in manifest["items"]:
        row = {"name": item["name"], "latency_ms": "", "samples_ms": "", "energy_mj": "", "power_w": "", "error": ""}
        try:
            samples = []
            # Like hwnas itself: several fresh sessions per item, samples pooled, so one
            # badly placed session cannot decide the result.
            for _ in range(max(1, int(st.get("sessions", 1)))):
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                so.log_severity_level = 3
                sess = ort.InferenceSession(os.path.join(args.bundle, item["onnx"]), sess_options=so,
                                            providers=args.providers.split(","))
                x = np.random.default_rng(0).standard_normal(item["input_shape"]).astype(np.float32)
                feed = {sess.get_inputs()[0].name: x}
                samples += time_item(sess, feed, int(st.get("warmup", 3)), int(st.get("min_repeats", 5)),
                                     int(st.get("max_repeats", 50)), float(st.get("min_time_ms", 2.0)),
                                     float(st.get("time_budget_s", 5.0)), float(st.get("rel_tol", 0.02)))
            row["latency_ms"] = f"{statistics.median(samples):.6g}"
            row["samples_ms"] = " ".join(f"{s:.6g}" for s in samples)
        except Exception as exc:  # a failure is a result row, not the end of the run
            row["error"] = f"onnxruntime: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        rows.append(row)
        sys.stderr.write(f"{item['name']}: {row['latency_ms'] or row['error']}\n")
    with open(out_path, "w", newline="") as fh:
        fh.write("# hwnas-results v1\n")
        fh.write(f"# device: {args.device}\n")
        w = csv.DictWriter(fh, fieldnames=["name", "latency_ms", "samples_ms", "energy_mj", "power_w", "error"])
        w.writeheader()
        w.writerows(rows)
    sys.stderr.write(f"wrote {len(rows)} rows to {out_path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
