"""Small models priced with and without the network-context slopes of the kernel model.

Fits two kernel predictors on the same kernel-job store — the context slopes on
(``KernelCostModel(context=True)``, the default) and off (the model as it was) — on the
kernel job's random networks only (an 80/20 split by network, never the zoo), then:

* held-out random networks by size (end to end under 1 ms, 1-4 ms, over 4 ms): the
  median error and MAPE of each, and of the kernel sums;
* zoo models (evaluation only), predicted from their ONNX files against their measured
  end-to-end time, taken from ``bench/small_model_overhead.py``'s JSON (``e2e_cpu_median_ms``:
  thread CPU time, which other load inflates least) — small models and a few larger ones.

Inputs (relative to the project root by default): the kernel store and the overhead JSON.

  python bench/small_models.py --store runs/d-small/c-copy.sqlite --measured runs/d-small/overhead2.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
BINS = ((0.0, 1.0, "<1 ms"), (1.0, 4.0, "1-4 ms"), (4.0, 1e9, ">4 ms"))


def _net_preds(model: Any, nets: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(whole-network prediction, kernel-sum prediction) of each network, in its context."""
    tot, sums = [], []
    for n in nets:
        per = model.predict_network(n.kernels)
        tot.append(model.compose(per, n.kernels))
        sums.append(float(np.sum(per)))
    return np.asarray(tot), np.asarray(sums)


def _by_size(y: np.ndarray, p: np.ndarray, size: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for lo, hi, name in BINS:
        m = (size >= lo) & (size < hi)
        if m.sum() >= 2:
            rel = p[m] / y[m] - 1
            out[name] = {"n": int(m.sum()), "median_err_pct": round(100 * float(np.median(rel)), 2),
                         "mape_pct": round(100 * float(np.mean(np.abs(rel))), 2)}
    return out


def main(argv: list[str] | None = None) -> None:
    from hwnas.cost_models.data import split
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_fit import FIT_PARAMS
    from hwnas.cost_models.kernel_model import KernelCostModel
    from hwnas.cost_models.kernel_predict import predict_onnx
    from hwnas.nn.onnx_graph import import_onnx
    from hwnas.store import Store

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default=str(ROOT / "runs" / "d-small" / "c-copy.sqlite"))
    p.add_argument("--measured", default=str(ROOT / "runs" / "d-small" / "overhead2.json"))
    p.add_argument("--zoo-dir", default=str(ROOT / "runs" / "d-small" / "zoo"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "small_models.json"))
    args = p.parse_args(argv)
    with Store(args.store) as st:
        data = load_kernel_data(st, args.device)
    tr, te = split(len(data.nets), 0.2, args.seed)
    test = [data.nets[i] for i in te]
    y = np.asarray([n.e2e_ms for n in test])
    ysum = np.asarray([float(np.sum(n.kernel_ms)) for n in test])
    mrows = json.loads(Path(args.measured).read_text())["rows"]
    measured = {r["model"]: r["e2e_cpu_median_ms"] for r in mrows}
    node_sums = {r["model"]: r["sum_nodes_ms"] for r in mrows}  # the profiler's per-node spans, fastest run
    out: dict[str, Any] = {"store": args.store, "networks": len(data.nets), "train": len(tr), "test": len(te),
                           "params": FIT_PARAMS, "load_average": [round(v, 2) for v in os.getloadavg()]}
    zoo_rows: dict[str, dict[str, float]] = {m: {"measured_ms": v, "sum_nodes_ms": node_sums[m]}
                                             for m, v in measured.items()}
    for label, ctx in (("context", True), ("no_context", False)):
        t0 = time.perf_counter()
        model = KernelCostModel(seed=args.seed, context=ctx, **FIT_PARAMS).fit_kernels(data, tr)
        fit_s = time.perf_counter() - t0
        tot, sums = _net_preds(model, test)
        out[label] = {"fit_s": round(fit_s, 1), "context": model.context_, "overhead_a_b_c": list(model.overhead_),
                      "held_out_networks_by_size": _by_size(y, tot, y),
                      "held_out_kernel_sums_by_size": _by_size(ysum, sums, y)}
        for name in measured:
            pred = predict_onnx(model, import_onnx(str(Path(args.zoo_dir) / f"{name}.onnx"), name=name), naive=False)
            zoo_rows[name][f"{label}_ms"] = round(pred.total_ms, 4)
            zoo_rows[name][f"{label}_err_pct"] = round(100 * (pred.total_ms / measured[name] - 1), 2)
            ksum = sum(k["ms"] for k in pred.kernels)  # against the profiler's own per-node sum: no e2e map
            zoo_rows[name][f"{label}_kernel_sum_err_pct"] = round(100 * (ksum / node_sums[name] - 1), 2)
    out["zoo"] = zoo_rows
    print(f"held-out random networks ({len(te)} of {len(data.nets)}; trained on the other {len(tr)}), median error / MAPE %")
    print(f"{'size':8s} {'n':>4s} {'context':>16s} {'no context':>16s}   kernel sums: {'context':>14s} {'no context':>14s}")
    for _, _, b in BINS:
        c, n = out["context"]["held_out_networks_by_size"].get(b), out["no_context"]["held_out_networks_by_size"].get(b)
        cs, ns = out["context"]["held_out_kernel_sums_by_size"].get(b), \
            out["no_context"]["held_out_kernel_sums_by_size"].get(b)
        if c and n and cs and ns:
            print(f"{b:8s} {c['n']:4d} {c['median_err_pct']:+7.1f} / {c['mape_pct']:5.1f} {n['median_err_pct']:+7.1f} / "
                  f"{n['mape_pct']:5.1f}   {'':13s}{cs['median_err_pct']:+6.1f} / {cs['mape_pct']:4.1f} "
                  f"{ns['median_err_pct']:+6.1f} / {ns['mape_pct']:4.1f}")
    print(f"\n{'zoo model (evaluation only)':32s} {'measured':>9s} {'context':>9s} {'err%':>6s} {'no ctx':>9s} {'err%':>6s}"
          f"   kernel sum vs per-node sum err%: {'context':>7s} {'no ctx':>7s}")
    for name, r in zoo_rows.items():
        print(f"{name:32s} {r['measured_ms']:9.3f} {r['context_ms']:9.3f} {r['context_err_pct']:6.1f} "
              f"{r['no_context_ms']:9.3f} {r['no_context_err_pct']:6.1f}   {'':33s}"
              f"{r['context_kernel_sum_err_pct']:7.1f} {r['no_context_kernel_sum_err_pct']:7.1f}")
    print(f"context slopes (log time per decade of network ms): {json.dumps(out['context']['context']['slopes'])}")
    print(f"load average {out['load_average'][0]} during the run: the measured times are from a loaded machine")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
