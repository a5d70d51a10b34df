"""Latency of any model: kernel predictors vs measured, on the zoo, on this CPU.

Phases (each resumable; run the timing ones alone on the machine, in pieces):

  python bench/any_model.py kernels                  # the kernel job as a new device's build runs it
  python bench/any_model.py export                   # zoo -> ONNX files (untimed)
  python bench/any_model.py zoo --time-limit 840     # measure every zoo model (rerun to continue)
  python bench/any_model.py report                   # fit, predict, table, JSON, PNG
  python bench/any_model.py                          # all four in turn (make bench)

``kernels`` runs the kernel job with adaptive sampling and its stopping rule (random
networks only, never zoo models; defaults: at most 1200 networks in 6 rounds, 300 s) and
logs each piece (wall time, rounds, which block families stopped early and when), so the
report can say how long building a predictor for a new device takes: job + fit. ``zoo``
measures each zoo model end to end (ONNX Runtime, CPU, 1 thread, the default protocol: 3
sessions) with ``hwnas profile --onnx``'s library call, in ``--zoo-rounds`` rounds (default 5):
every model once per round, round after round, so a model's rounds lie minutes apart and
the machine's drifts (on a shared VM a model's time moves by 10-40% from one session to the
next) fall on different rounds; round 1 goes into ``--store``, round r into a sibling
``<store>.zoo-round<r>.sqlite``. The measured latency is the median over the rounds, and
the report states the measurement's own repeatability beside the predictors: how often one
round lies within ±10% / ±5% of the median of the other rounds (no predictor can be
judged more finely than that). ``report`` fits the kernel
predictor on all kernel data (timed), predicts every zoo model with it, with the naive
per-node sum (every ONNX node its own kernel, same predictors) and with the shipped
predictor ``asset:kernel-cpu-ort`` (the one ``hwnas predict --onnx`` uses on a fresh
install; a line says when this machine's fingerprint differs from the asset's). A model a
predictor cannot price (or that cannot be exported/imported) is counted as refused, never
dropped: the within-±10%/±5% shares are over every measured zoo model, refusals as misses.
Writes ``bench/results/any_model.json`` and ``any_model.png``.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
JOB_LOG = RESULTS / "any_model_kernel_job.json"
SHIPPED = "asset:kernel-cpu-ort"


def _store(args: argparse.Namespace):  # noqa: ANN202
    from hwnas.store import Store

    return Store(args.store)


def _zoo(args: argparse.Namespace) -> list[Any]:
    from hwnas import registry

    return [e for e in registry.list("zoo") if not args.only or any(fnmatch.fnmatch(e.name, p) for p in args.only)]


def cmd_kernels(args: argparse.Namespace) -> None:
    from hwnas.cost_models.kernel_fit import advise_round
    from hwnas.profilers.kernel_job import KernelSampling, StopRule, profile_kernels
    from hwnas.profilers.request import ProfileRequest

    sampling = KernelSampling(rounds=args.rounds, stop=StopRule(args.stop_mape, args.stop_min_networks))
    with _store(args) as st:
        limit = 300.0 if args.time_limit is None else args.time_limit or None  # a new device's build: 300 s
        s = profile_kernels(st, ProfileRequest(networks=args.networks, seed=args.seed, deadline_s=limit,
                                               show_progress=True), sampling, advisor=advise_round)
    runs = json.loads(JOB_LOG.read_text()) if JOB_LOG.exists() else []
    runs.append({k: v for k, v in s.to_dict().items() if k != "errors"})
    JOB_LOG.write_text(json.dumps(runs, indent=1))
    print(f"kernel job piece: {s.measured} measured, {s.skipped} skipped, {s.failed} failed, {s.wall_s} s "
          f"({s.advice_s} s judging), complete={s.complete}, stopped early={s.stopped_early}"
          + ("" if s.complete else " (time limit: the predictor is fitted on what was measured; rerun to add)"))


def cmd_export(args: argparse.Namespace) -> None:
    from hwnas.nn.torch_import import export_module

    out = Path(args.zoo_dir)
    out.mkdir(parents=True, exist_ok=True)
    for e in _zoo(args):
        f = out / f"{e.name}.onnx"
        if f.exists():
            continue
        try:
            m = e.obj.build()
            f.write_bytes(export_module(m, m.input_shape, e.name))
            print("exported", f)
        except Exception as exc:  # noqa: BLE001 - counted as refused in the report, never dropped
            print(f"export failed: {e.name}: {str(exc).splitlines()[0][:200]}")


def round_store(args: argparse.Namespace, r: int) -> Path:
    """Where round ``r`` (1-based) of the zoo measurement lives: round 1 in the zoo store
    (``--zoo-store``, by default the kernel store), round r in a sibling of it."""
    base = Path(args.zoo_store or args.store)
    return base if r == 1 else base.with_name(f"{base.stem}.zoo-round{r}{base.suffix}")


def cmd_zoo(args: argparse.Namespace) -> None:
    from hwnas.profilers.onnx_job import ModelSource, profile_model
    from hwnas.store import Store

    t0 = time.perf_counter()
    for r in range(1, args.zoo_rounds + 1):
        print(f"round {r}/{args.zoo_rounds} -> {round_store(args, r)}")
        with Store(round_store(args, r)) as st:
            for e in _zoo(args):
                if args.time_limit and time.perf_counter() - t0 > args.time_limit:
                    print("time limit reached; rerun to continue")
                    return
                f = Path(args.zoo_dir) / f"{e.name}.onnx"
                if not f.exists():
                    print(f"{e.name:32s} not exported")
                    continue
                res = profile_model(st, ModelSource(onnx=str(f)))  # a model already in this round is skipped
                b = res["backends"][0]
                print(f"{e.name:32s} {b.get('median_ms') or 'done before'}")


def _round_medians(args: argparse.Namespace, device: str, hashes: dict[str, str]) -> dict[str, list[float]]:
    """Each zoo model's end-to-end median in every round measured so far (round order)."""
    from hwnas.errors import HwnasError
    from hwnas.store import Store

    out: dict[str, list[float]] = {}
    for r in range(1, args.zoo_rounds + 1):
        path = round_store(args, r)
        if not path.exists():
            continue
        with Store(path) as st:
            try:
                dev_id = st.find_device(device)["id"]
            except HwnasError:
                continue
            rows = st.query(device_id=dev_id, backend="onnxruntime", kind="network", ok_only=True, latest=True)
        by = {x["target"]: float(x["median_ms"]) for x in rows if (x["extra"] or {}).get("job") != "kernels"}
        for name, h in hashes.items():
            if h in by:
                out.setdefault(name, []).append(by[h])
    return out


def repeatability(rounds: dict[str, list[float]]) -> dict[str, Any]:
    """How well the measurement agrees with itself: each round of each model (with 3 or
    more rounds) against the median of its other rounds, as the shares within ±10% / ±5%
    that the predictors are judged by - the ceiling of any predictor's figures."""
    rel = [v / float(np.median(vs[:i] + vs[i + 1:])) - 1 for vs in rounds.values() if len(vs) >= 3
           for i, v in enumerate(vs)]
    if not rel:
        return {"rounds": max((len(v) for v in rounds.values()), default=0), "note": "needs 3 or more rounds"}
    a = np.abs(np.asarray(rel))
    spread = [float(np.ptp(v) / np.median(v)) for v in rounds.values() if len(v) >= 2]
    return {"rounds": max(len(v) for v in rounds.values()), "models": sum(len(v) >= 3 for v in rounds.values()),
            "round_vs_others_within_10": float(np.mean(a <= 0.10)), "round_vs_others_within_5": float(np.mean(a <= 0.05)),
            "median_abs_rel": float(np.median(a)), "max_abs_rel": float(a.max()),
            "median_round_spread": float(np.median(spread)), "max_round_spread": float(max(spread)),
            **perfect_predictor(rounds)}


def perfect_predictor(rounds: dict[str, list[float]], draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """What a predictor that knew every model's true latency would score against the
    median of the rounds: the rounds resampled with replacement (a bootstrap of the
    measurement), each resample's median against the observed one, as the shares within
    ±10% / ±5% - how much of a predictor's miss the measurement alone can explain."""
    vals = [np.asarray(v, dtype=float) for v in rounds.values() if len(v) >= 3]
    if not vals:
        return {}
    rng = np.random.default_rng(seed)
    rel = np.stack([np.median(v[rng.integers(0, len(v), (draws, len(v)))], axis=1) / np.median(v) - 1 for v in vals])
    a = np.abs(rel)
    return {"perfect_predictor_within_10": float(np.mean(a <= 0.10)), "perfect_predictor_within_5": float(np.mean(a <= 0.05))}


def _kernel_diagnostics(st, dev_id: int, hashes: dict[str, str], preds: dict[str, Any]) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Per family: predicted vs measured kernel times inside the zoo models (diagnostics
    only: where the model-level error comes from; nothing here is used for fitting)."""
    from hwnas.cost_models.kernel_features import family

    rel: dict[str, list[float]] = {}
    for name, h in hashes.items():
        if name not in preds:
            continue
        ks = preds[name].kernels
        for b in st.query(device_id=dev_id, backend="onnxruntime", kind="block", network=h, ok_only=True, latest=True):
            pos = int(b["position"])
            if pos < len(ks) and b["median_ms"]:
                rel.setdefault(family(ks[pos]["op"]), []).append(ks[pos]["ms"] / float(b["median_ms"]) - 1)
    return {f: {"n": len(v), "mape": round(float(np.mean(np.abs(v))), 4), "bias": round(float(np.median(v)), 4)}
            for f, v in sorted(rel.items())}


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Shares within ±10% / ±5% over every model (a refused one, NaN, is a miss); errors over priced ones."""
    ok = np.isfinite(p)
    rel = (p[ok] - y[ok]) / y[ok]
    out = {"models": int(len(y)), "refused": int((~ok).sum()),
           "within_10": float(np.sum(np.abs(rel) <= 0.10) / max(len(y), 1)),
           "within_5": float(np.sum(np.abs(rel) <= 0.05) / max(len(y), 1))}
    if ok.any():
        out.update(rmse_ms=float(np.sqrt(np.mean((p[ok] - y[ok]) ** 2))), mape=float(np.mean(np.abs(rel))),
                   max_abs_rel=float(np.max(np.abs(rel))))
    return out


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
    for key, mark, colour, label in (("naive_ms", "x", "tab:red", "naive per-node sum"),
                                     ("shipped_ms", "^", "tab:green", "shipped predictor"),
                                     ("predicted_ms", "o", "tab:blue", "fresh kernel predictor")):
        pts = [(r["measured_ms"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14, marker=mark, c=colour, label=label)
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


def _shipped() -> tuple[Any, dict[str, Any]]:
    """The shipped kernel predictor and what to say about it (None when not in this install)."""
    from hwnas import assets
    from hwnas.assets.kernel_asset import mismatch_line
    from hwnas.cost_models.persistence import load_model
    from hwnas.errors import HwnasError
    from hwnas.profilers.fingerprint import device_fingerprint

    try:
        asset = assets.get(SHIPPED)
        model = load_model(assets.resolve_path(SHIPPED, "cost_model"))
    except HwnasError as exc:
        return None, {"asset": SHIPPED, "available": False, "reason": str(exc)}
    note = mismatch_line(SHIPPED, dict(asset.meta.get("device_info") or {}), device_fingerprint("cpu", 1).to_dict())
    built = asset.meta.get("built") or {}
    return model, {"asset": SHIPPED, "available": True, "fingerprint": asset.meta.get("fingerprint"),
                   "fingerprint_note": note, "built": built.get("date"), "provenance": asset.meta.get("provenance"),
                   "networks": (asset.meta.get("data") or {}).get("networks")}


def _price(model: Any, onnx: Any) -> tuple[Any, str | None]:
    """(prediction, None) or (None, why it was refused)."""
    from hwnas.cost_models.kernel_predict import predict_onnx
    from hwnas.errors import HwnasError

    try:
        return predict_onnx(model, onnx, naive=False), None
    except HwnasError as exc:
        return None, " ".join(str(exc).split())[:240]


def _import_zoo(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(imported ONNX models, their graph hashes, why the others could not be imported)."""
    from hwnas.errors import HwnasError
    from hwnas.nn.onnx_graph import import_onnx, to_network

    models, hashes, refused = {}, {}, {}
    for e in _zoo(args):
        f = Path(args.zoo_dir) / f"{e.name}.onnx"
        if not f.exists():
            refused[e.name] = "not exported (see the export phase)"
            continue
        try:
            models[e.name] = import_onnx(str(f), name=e.name)
            hashes[e.name] = to_network(models[e.name].graph).hash
        except HwnasError as exc:
            refused[e.name] = " ".join(str(exc).split())[:240]
    return models, hashes, refused


def _row(e: Any, y: float, onnx: Any, fresh: Any, shipped: Any) -> tuple[dict[str, Any], Any]:
    from hwnas.cost_models.kernel_predict import naive_sum

    pred, why = _price(fresh, onnx)
    row: dict[str, Any] = {"model": e.name, "family": e.obj.family, "measured_ms": round(y, 4),
                           "predicted_ms": None, "error_pct": None, "naive_ms": round(naive_sum(fresh, onnx), 4)}
    row["naive_error_pct"] = round(100 * (row["naive_ms"] - y) / y, 2)
    if pred is not None:
        row.update(predicted_ms=round(pred.total_ms, 4), error_pct=round(100 * (pred.total_ms - y) / y, 2),
                   kernels=len(pred.kernels))
    else:
        row["refused"] = why
    if shipped is not None:
        sp, swhy = _price(shipped, onnx)
        row["shipped_ms"] = None if sp is None else round(sp.total_ms, 4)
        row["shipped_error_pct"] = None if sp is None else round(100 * (sp.total_ms - y) / y, 2)
        if sp is None:
            row["shipped_refused"] = swhy
    return row, pred


def _fit_data(args: argparse.Namespace, st: Any, load: Any) -> Any:
    """The kernel-job networks the fresh predictor learns from: ``--store``'s, or another
    build's (``--fit-store``: e.g. a new device's 300 s job) judged on ``--store``'s zoo rounds."""
    if not args.fit_store:
        return load(st, args.device)
    from hwnas.store import Store

    with Store(args.fit_store, readonly=True) as other:
        return load(other, args.device)


def _build_time(args: argparse.Namespace, data: Any, load_s: float, fit_s: float) -> dict[str, Any]:
    """How long this device's predictor took: the kernel job's pieces on its store + load + fit."""
    job_store = Path(args.fit_store or args.store).resolve()
    pieces = [p for p in (json.loads(JOB_LOG.read_text()) if JOB_LOG.exists() else [])
              if Path(p.get("store", "")).resolve() == job_store]
    last = pieces[-1] if pieces else {}
    job_s = sum(float(p["wall_s"]) for p in pieces)
    return {"kernel_job_pieces": len(pieces), "kernel_job_wall_s": round(job_s, 1),
            "judging_rounds_s": round(sum(float(p.get("advice_s", 0.0)) for p in pieces), 1),
            "complete": last.get("complete"), "stopped_early": last.get("stopped_early"),
            "rounds_run": last.get("rounds_run"), "stop_rule": last.get("stop"),
            "families": last.get("families") or {}, "networks": data.summary["networks"],
            "kernels": data.summary["kernels"],
            "networks_with_detection_mismatch": data.summary["networks_with_detection_mismatch"],
            "load_s": round(load_s, 2), "fit_s": round(fit_s, 2),
            "new_device_s": round(job_s + load_s + fit_s, 1), "goal_s": 360}


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    """One field of every row as floats, NaN where a predictor refused the model."""
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)


def _single_rounds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The fresh predictor's shares within ±10% / ±5% when one round alone is taken as the
    measurement (lowest and highest over the rounds every model has): how much a
    one-measurement benchmark's verdict depends on when it was measured."""
    n = min((len(r["rounds_ms"]) for r in rows), default=0)
    if n < 2:
        return {}
    p = _column(rows, "predicted_ms")
    per = [_metrics(np.array([r["rounds_ms"][i] for r in rows]), p) for i in range(n)]
    return {f"{k}_range": [min(m[k] for m in per), max(m[k] for m in per)] for k in ("within_10", "within_5")}


def other_days(args: argparse.Namespace, hashes: dict[str, str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The zoo measured on other days (``--other-zoo``: each a round-1 store with its sibling
    rounds): how often its median lies within ±10% / ±5% of this one's (how far the
    reference itself moves from one day to the next, the finest a predictor built on
    other days can be judged), and every predictor against the median of all rounds of
    all days (a reference steadier than either)."""
    if not args.other_zoo:
        return {}
    pooled = {r["model"]: list(r["rounds_ms"]) for r in rows}
    out: dict[str, Any] = {"stores": [], "agreement": []}
    for path in args.other_zoo:
        other = _round_medians(argparse.Namespace(**{**vars(args), "zoo_store": path}), args.device, hashes)
        if not any(r["model"] in other for r in rows):
            raise SystemExit(f"--other-zoo {path}: no zoo model of this report is measured there (expected the "
                             "round-1 store of a `zoo` run, its rounds beside it)")
        both = [r["model"] for r in rows if r["model"] in other]
        here = np.array([r["measured_ms"] for r in rows if r["model"] in other])
        there = np.array([float(np.median(other[m])) for m in both])
        out["stores"].append(path)
        out["agreement"].append({**{k: v for k, v in _metrics(here, there).items() if k != "refused"},
                                 "median_ratio": float(np.median(there / here)), "rounds": max(map(len, other.values()))})
        for m in both:
            pooled[m] += other[m]
    y = np.array([float(np.median(pooled[r["model"]])) for r in rows])
    out["pooled_rounds"] = int(np.median([len(v) for v in pooled.values()]))
    out["against_all_days"] = {k: _metrics(y, _column(rows, c)) for k, c in (
        ("kernel_predictor", "predicted_ms"), ("naive_per_node_sum", "naive_ms"), ("shipped_predictor", "shipped_ms"))
        if any(r.get(c) is not None for r in rows)}
    return out


def _summary(rows: list[dict[str, Any]], shipped_info: dict[str, Any]) -> dict[str, Any]:
    y = np.array([r["measured_ms"] for r in rows])
    out = {"models": len(rows), "kernel_predictor": _metrics(y, _column(rows, "predicted_ms")),
           "naive_per_node_sum": _metrics(y, _column(rows, "naive_ms"))}
    if shipped_info.get("available"):
        out["shipped_predictor"] = _metrics(y, _column(rows, "shipped_ms"))
    return out


def cmd_report(args: argparse.Namespace) -> None:
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_fit import FIT_PARAMS
    from hwnas.cost_models.kernel_model import KernelCostModel

    missing = [str(p) for p in (Path(args.store), Path(args.zoo_dir)) if not p.exists()]
    if missing:
        print(f"skipped: {' and '.join(missing)} not found (run the kernels, export and zoo phases first)")
        return
    shipped, shipped_info = _shipped()
    models, hashes, not_imported = _import_zoo(args)
    with _store(args) as st:
        t0 = time.perf_counter()
        data = _fit_data(args, st, load_kernel_data)
        if args.job_before:  # the predictor an earlier, shorter build had: its networks only
            rows = [r for r in st.query(kind="network", ok_only=True) if r["created"] < args.job_before]
            early = {r["target"] for r in rows}
            data.nets = [n for n in data.nets if n.hash in early]
            data.summary["networks"] = len(data.nets)
            data.summary["networks_with_detection_mismatch"] = sum(
                1 for r in rows if (r["extra"] or {}).get("job") == "kernels"
                and not (r["extra"] or {}).get("detection", {}).get("clean", False))
            data.summary["kernels"] = sum(len(n.kernels) for n in data.nets)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fresh = KernelCostModel(seed=args.seed, **FIT_PARAMS).fit_kernels(data)
        fit_s = time.perf_counter() - t0
        if args.common_map:  # the ablation: one per-kernel cost for every family, as before
            from hwnas.cost_models.kernel_overhead import fit_overhead

            fresh.overhead_, fresh.kernel_cost_ = fit_overhead(data.nets), {}
        rounds = _round_medians(args, args.device, hashes)
        rows, preds = [], {}
        for e in _zoo(args):
            if e.name in rounds:
                row, preds[e.name] = _row(e, float(np.median(rounds[e.name])), models[e.name], fresh, shipped)
                row["rounds_ms"] = [round(v, 4) for v in rounds[e.name]]
                rows.append(row)
        priced = {n: p for n, p in preds.items() if p is not None}
        from hwnas.store import Store

        # the zoo's profiled kernels are in its round 1: the kernel store unless --zoo-store
        with Store(args.zoo_store, readonly=True) if args.zoo_store else nullcontext(st) as zs:
            diag = _kernel_diagnostics(zs, zs.find_device(args.device)["id"], hashes, priced)
    not_measured = {e.name: not_imported.get(e.name, "not measured (run the zoo phase)")
                    for e in _zoo(args) if e.name not in rounds}
    summary = {**_summary(rows, shipped_info), "measurement_repeatability": repeatability(rounds),
               "against_single_rounds": _single_rounds(rows), "not_measured": not_measured,
               "other_days": other_days(args, hashes, rows)}
    out = {"device": data.device, "summary": summary,
           "shipped": shipped_info, "predictor_build": _build_time(args, data, load_s, fit_s),
           "fit_params": FIT_PARAMS, "overhead": list(fresh.overhead_), "kernel_costs": dict(fresh.kernel_cost_),
           "families": {f: m.n for f, m in fresh.families_.items()}, "rows": rows, "zoo_kernels_by_family": diag,
           "fused_pairs": fresh.rules().fused_pairs()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(out, indent=1))
    if rows:
        _plot(rows, RESULTS / Path(args.out).with_suffix(".png").name)
    _print(rows, out)


def _print(rows: list[dict[str, Any]], out: dict[str, Any]) -> None:
    def f(v: Any, spec: str) -> str:
        return format(v, spec) if v is not None else "refused".rjust(int(spec.split(".")[0]))

    print(f"{'model':32s} {'measured':>9s} {'kernel':>9s} {'err%':>7s} {'naive':>9s} {'err%':>7s} "
          f"{'shipped':>9s} {'err%':>7s}")
    for r in rows:
        print(f"{r['model']:32s} {r['measured_ms']:9.3f} {f(r['predicted_ms'], '9.3f')} {f(r['error_pct'], '7.1f')} "
              f"{r['naive_ms']:9.3f} {r['naive_error_pct']:7.1f} {f(r.get('shipped_ms'), '9.3f')} "
              f"{f(r.get('shipped_error_pct'), '7.1f')}")
    for k, m in out["summary"].items():
        if isinstance(m, dict) and "within_10" in m:
            print(f"{k:28s} within ±10% {100 * m['within_10']:.1f}%  ±5% {100 * m['within_5']:.1f}%  refused "
                  f"{m['refused']}/{m['models']}" + (f"  RMSE {m['rmse_ms']:.3f} ms  MAPE {100 * m['mape']:.2f}%"
                                                      if "mape" in m else ""))
    rep = out["summary"]["measurement_repeatability"]
    if "round_vs_others_within_10" in rep:
        print(f"{'measurement itself':28s} within ±10% {100 * rep['round_vs_others_within_10']:.1f}%  ±5% "
              f"{100 * rep['round_vs_others_within_5']:.1f}%  (each of {rep['rounds']} rounds against the median of the "
              f"others; median spread of a model's rounds {100 * rep['median_round_spread']:.1f}%)")
    if "perfect_predictor_within_5" in rep:
        print(f"{'a perfect predictor':28s} within ±10% {100 * rep['perfect_predictor_within_10']:.1f}%  ±5% "
              f"{100 * rep['perfect_predictor_within_5']:.1f}%  (the true latency against the median of "
              f"{rep['rounds']} rounds, the rounds bootstrapped)")
    one = out["summary"]["against_single_rounds"]
    if one:
        print(f"kernel predictor against one round alone: within ±10% {100 * one['within_10_range'][0]:.1f}-"
              f"{100 * one['within_10_range'][1]:.1f}%, ±5% {100 * one['within_5_range'][0]:.1f}-"
              f"{100 * one['within_5_range'][1]:.1f}%")
    od = out["summary"].get("other_days") or {}
    for path, a in zip(od.get("stores", []), od.get("agreement", [])):
        print(f"{'another day':28s} within ±10% {100 * a['within_10']:.1f}%  ±5% {100 * a['within_5']:.1f}%  (the median "
              f"of {path}'s {a['rounds']} rounds against this one's; median ratio {a['median_ratio']:.3f})")
    for k, m in (od.get("against_all_days") or {}).items():
        print(f"{k + ', all days':28s} within ±10% {100 * m['within_10']:.1f}%  ±5% {100 * m['within_5']:.1f}%  "
              f"(against the median of all {od['pooled_rounds']} rounds)")
    if out["summary"]["not_measured"]:
        print("not measured:", json.dumps(out["summary"]["not_measured"]))
    sh = out["shipped"]
    print("shipped predictor:", sh.get("fingerprint_note") or ("same fingerprint" if sh.get("available")
                                                                 else f"not available ({sh.get('reason')})"))
    b = out["predictor_build"]
    print(f"new device's predictor: kernel job {b['kernel_job_wall_s']} s ({b['kernel_job_pieces']} piece(s), stopped "
          f"early: {b['stopped_early']}) + load {b['load_s']} s + fit {b['fit_s']} s = {b['new_device_s']} s "
          f"(goal {b['goal_s']} s)")
    for fam, rec in sorted(b["families"].items()):
        print(f"  {fam:12s} held-out MAPE {rec.get('mape')} on {rec.get('networks')} networks, accurate "
              f"{rec.get('accurate')}, stopped at round {rec.get('stopped_round')}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", nargs="?", default="all", choices=("all", "kernels", "export", "zoo", "report"),
                   help="which phase to run (default: %(default)s, every phase in turn)")
    p.add_argument("--store", default=str(ROOT / "runs" / "any-model" / "store.sqlite"))
    p.add_argument("--zoo-dir", default=str(ROOT / "runs" / "any-model" / "zoo"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--networks", type=int, default=1200, help="kernels: most random networks (default %(default)s)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--stop-mape", type=float, default=0.04, help="kernels: the stop rule (default %(default)s)")
    p.add_argument("--stop-min-networks", type=int, default=20)
    p.add_argument("--zoo-store", default="", metavar="PATH",
                   help="zoo/report: the store of the zoo's round 1 (rounds r: siblings of it; default: --store), "
                        "so the zoo can be measured afresh beside a kernel store")
    p.add_argument("--other-zoo", action="append", default=[], metavar="PATH",
                   help="report: the zoo measured on another day (its round-1 store; repeatable): the day-to-day "
                        "agreement, and the predictors against the median of every day's rounds")
    p.add_argument("--zoo-rounds", type=int, default=5,
                   help="zoo/report: rounds of the zoo measurement; the median over rounds is the measured latency")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds per piece, a rerun resumes (kernels: default 300, a new device's build; 0: none)")
    p.add_argument("--only", action="append", default=[], metavar="GLOB", help="only zoo models matching (repeatable)")
    p.add_argument("--job-before", default="", metavar="ISO",
                   help="report: fit only the kernel-job networks measured before this UTC time (an earlier build)")
    p.add_argument("--fit-store", default="", metavar="PATH",
                   help="report: fit the fresh predictor on this store's kernel job (another build), zoo from --store")
    p.add_argument("--common-map", action="store_true",
                   help="report: the fresh predictor's end-to-end map with one per-kernel cost (no family costs)")
    p.add_argument("--out", default="any_model.json", help="report JSON under bench/results (default %(default)s)")
    args = p.parse_args(argv)
    phases = {"kernels": cmd_kernels, "export": cmd_export, "zoo": cmd_zoo, "report": cmd_report}
    for name in phases if args.phase == "all" else [args.phase]:
        phases[name](args)


if __name__ == "__main__":
    main()
