"""Latency of any model: kernel predictors vs measured, on the zoo, on this CPU.

Phases (each resumable; run the timing ones alone on the machine, in pieces):

  python bench/any_model.py kernels --networks 1600 --time-limit 840   # repeat until complete
  python bench/any_model.py export                                     # zoo -> ONNX files (untimed)
  python bench/any_model.py zoo --time-limit 840                       # measure every zoo model
  python bench/any_model.py report                                     # fit, predict, table, JSON, PNG
  python bench/any_model.py                                            # all four in turn (make bench)

``kernels`` runs the kernel job (random networks only, never zoo models) and logs each
piece's wall time, so the report can say how long building a predictor for a new device
takes. ``zoo`` measures each zoo model end to end (ONNX Runtime, CPU, 1 thread, the
default protocol: 3 sessions) with ``hwnas profile --onnx``'s library call. ``report``
fits the kernel predictor on all kernel data (timed), predicts every zoo model and the
naive per-node sum (every ONNX node its own kernel, same predictors), and writes
``bench/results/any_model.json`` and ``any_model.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"


def _store(args: argparse.Namespace):  # noqa: ANN202
    from hwnas.store import Store

    return Store(args.store)


def cmd_kernels(args: argparse.Namespace) -> None:
    from hwnas.cost_models.kernel_fit import advise_round
    from hwnas.profilers.kernel_job import KernelSampling, profile_kernels
    from hwnas.profilers.request import ProfileRequest

    with _store(args) as st:
        s = profile_kernels(st, ProfileRequest(networks=args.networks, seed=args.seed, deadline_s=args.time_limit,
                                               show_progress=True), KernelSampling(rounds=args.rounds),
                            advisor=advise_round)
    log = RESULTS / "any_model_kernel_job.json"
    runs = json.loads(log.read_text()) if log.exists() else []
    runs.append({k: v for k, v in s.to_dict().items() if k != "errors"})
    log.write_text(json.dumps(runs, indent=1))
    print(f"kernel job piece: {s.measured} measured, {s.skipped} skipped, {s.failed} failed, {s.wall_s} s, "
          f"complete={s.complete}")


def cmd_export(args: argparse.Namespace) -> None:
    from hwnas import registry
    from hwnas.nn.torch_import import export_module

    out = Path(args.zoo_dir)
    out.mkdir(parents=True, exist_ok=True)
    for e in registry.list("zoo"):
        f = out / f"{e.name}.onnx"
        if not f.exists():
            m = e.obj.build()
            f.write_bytes(export_module(m, m.input_shape, e.name))
            print("exported", f)


def cmd_zoo(args: argparse.Namespace) -> None:
    from hwnas import registry
    from hwnas.profilers.onnx_job import ModelSource, profile_model

    t0 = time.perf_counter()
    with _store(args) as st:
        for e in registry.list("zoo"):
            if args.time_limit and time.perf_counter() - t0 > args.time_limit:
                print("time limit reached; rerun to continue")
                return
            res = profile_model(st, ModelSource(onnx=str(Path(args.zoo_dir) / f"{e.name}.onnx")))
            b = res["backends"][0]
            print(f"{e.name:32s} {b.get('median_ms') or 'skipped'}")


def _measured(st, dev_id: int, hashes: dict[str, str]) -> dict[str, float]:  # noqa: ANN001
    rows = st.query(device_id=dev_id, backend="onnxruntime", kind="network", ok_only=True, latest=True)
    by = {r["target"]: float(r["median_ms"]) for r in rows}
    return {name: by[h] for name, h in hashes.items() if h in by}


def _kernel_diagnostics(st, dev_id: int, hashes: dict[str, str], preds: dict[str, list[float]],  # noqa: ANN001
                        ops: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Per family: predicted vs measured kernel times inside the zoo models (diagnostics
    only: where the model-level error comes from; nothing here is used for fitting)."""
    from hwnas.cost_models.kernel_features import family

    rel: dict[str, list[float]] = {}
    for name, h in hashes.items():
        if name not in preds:
            continue
        for b in st.query(device_id=dev_id, backend="onnxruntime", kind="block", network=h, ok_only=True, latest=True):
            pos = int(b["position"])
            if pos < len(preds[name]) and b["median_ms"]:
                rel.setdefault(family(ops[name][pos]), []).append(preds[name][pos] / float(b["median_ms"]) - 1)
    return {f: {"n": len(v), "mape": round(float(np.mean(np.abs(v))), 4), "bias": round(float(np.median(v)), 4)}
            for f, v in sorted(rel.items())}


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    rel = (p - y) / y
    return {"within_10": float(np.mean(np.abs(rel) <= 0.10)), "within_5": float(np.mean(np.abs(rel) <= 0.05)),
            "rmse_ms": float(np.sqrt(np.mean((p - y) ** 2))), "mape": float(np.mean(np.abs(rel))),
            "max_abs_rel": float(np.max(np.abs(rel)))}


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.array([r["measured_ms"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    lo, hi = y.min() * 0.7, y.max() * 1.4
    xs = np.array([lo, hi])
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.25, label="±10%")
    ax.plot(xs, xs, "k-", lw=0.7)
    ax.scatter(y, [r["naive_ms"] for r in rows], s=14, marker="x", c="tab:red", label="naive per-node sum")
    ax.scatter(y, [r["predicted_ms"] for r in rows], s=16, c="tab:blue", label="kernel predictor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms, ONNX Runtime, 1 thread)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{len(rows)} zoo models never seen in training", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def cmd_report(args: argparse.Namespace) -> None:
    from hwnas import registry
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_model import KernelCostModel
    from hwnas.cost_models.kernel_predict import naive_sum, predict_onnx
    from hwnas.nn.onnx_graph import import_onnx, to_network

    missing = [str(p) for p in (Path(args.store), Path(args.zoo_dir)) if not p.exists()]
    if missing:
        print(f"skipped: {' and '.join(missing)} not found (run the kernels, export and zoo phases first)")
        return
    with _store(args) as st:
        t0 = time.perf_counter()
        data = load_kernel_data(st, args.device)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = KernelCostModel(seed=args.seed).fit_kernels(data)
        fit_s = time.perf_counter() - t0
        dev_id = st.find_device(args.device)["id"]
        models = {e.name: import_onnx(str(Path(args.zoo_dir) / f"{e.name}.onnx"), name=e.name)
                  for e in registry.list("zoo")}
        hashes = {n: to_network(m.graph).hash for n, m in models.items()}
        measured = _measured(st, dev_id, hashes)
        preds = {n: predict_onnx(model, m, naive=False) for n, m in models.items() if n in measured}
        diag = _kernel_diagnostics(st, dev_id, hashes, {n: [k["ms"] for k in p.kernels] for n, p in preds.items()},
                                   {n: [k["op"] for k in p.kernels] for n, p in preds.items()})
    rows = []
    for e in registry.list("zoo"):
        if e.name not in measured:
            continue
        pred = preds[e.name]
        y = measured[e.name]
        naive = naive_sum(model, models[e.name])
        rows.append({"model": e.name, "family": e.obj.family, "measured_ms": round(y, 4),
                     "predicted_ms": round(pred.total_ms, 4), "naive_ms": round(naive, 4),
                     "error_pct": round(100 * (pred.total_ms - y) / y, 2),
                     "naive_error_pct": round(100 * (naive - y) / y, 2), "kernels": len(pred.kernels)})
    y = np.array([r["measured_ms"] for r in rows])
    summary = {"models": len(rows), "kernel_predictor": _metrics(y, np.array([r["predicted_ms"] for r in rows])),
               "naive_per_node_sum": _metrics(y, np.array([r["naive_ms"] for r in rows]))}
    job_log = RESULTS / "any_model_kernel_job.json"
    pieces = json.loads(job_log.read_text()) if job_log.exists() else []
    build = {"kernel_job_pieces": len(pieces), "kernel_job_wall_s": round(sum(p["wall_s"] for p in pieces), 1),
             "networks": data.summary["networks"], "kernels": data.summary["kernels"],
             "networks_with_detection_mismatch": data.summary["networks_with_detection_mismatch"],
             "load_s": round(load_s, 2), "fit_s": round(fit_s, 2)}
    build["total_s"] = round(build["kernel_job_wall_s"] + fit_s + load_s, 1)
    out = {"device": data.device, "summary": summary, "predictor_build": build, "overhead": list(model.overhead_),
           "families": {f: m.n for f, m in model.families_.items()}, "rows": rows,
           "zoo_kernels_by_family": diag,
           "fused_pairs": model.rules().fused_pairs()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "any_model.json").write_text(json.dumps(out, indent=1))
    _plot(rows, RESULTS / "any_model.png")
    print(f"{'model':32s} {'measured':>9s} {'kernel':>9s} {'err%':>7s} {'naive':>9s} {'err%':>7s}")
    for r in rows:
        print(f"{r['model']:32s} {r['measured_ms']:9.3f} {r['predicted_ms']:9.3f} {r['error_pct']:7.1f} "
              f"{r['naive_ms']:9.3f} {r['naive_error_pct']:7.1f}")
    for k, m in summary.items():
        if isinstance(m, dict):
            print(f"{k:20s} within ±10% {100 * m['within_10']:.1f}%  ±5% {100 * m['within_5']:.1f}%  "
                  f"RMSE {m['rmse_ms']:.3f} ms  MAPE {100 * m['mape']:.2f}%")
    print("predictor build:", json.dumps(build))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", nargs="?", default="all", choices=("all", "kernels", "export", "zoo", "report"),
                   help="which phase to run (default: %(default)s, every phase in turn)")
    p.add_argument("--store", default=str(ROOT / "runs" / "any-model" / "store.sqlite"))
    p.add_argument("--zoo-dir", default=str(ROOT / "runs" / "any-model" / "zoo"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--networks", type=int, default=1600)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=None)
    args = p.parse_args(argv)
    phases = {"kernels": cmd_kernels, "export": cmd_export, "zoo": cmd_zoo, "report": cmd_report}
    for name in phases if args.phase == "all" else [args.phase]:
        phases[name](args)


if __name__ == "__main__":
    main()
