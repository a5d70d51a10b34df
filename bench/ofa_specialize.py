"""Benchmark: OFA specialisation on this CPU - every derived subnet measured within its budget.

One trained mbv3 supernet (progressive shrinking + KD on digits, 16x16: SMALL DATA), its
accuracy predictor (the CV-chosen ensemble; its held-out RMSE and Kendall tau beside the
previous one-hot MLP, ridge, a MACs-only line and the training mean, and the labels' own
noise: the held-out subnets scored twice on other calibration batches), and >= 5 latency
budgets on this CPU, each searched under TWO pricings of the same profiled ``mbv3`` store
(ONNX Runtime, 1 thread):

* ``store`` - the store itself: its primitives' lookup-table sum calibrated on its own
  whole-network rows (``hwnas specialize --cost store=...``; the issue's pricing);
* ``cost model`` - a cost model fitted on that store (best held-out RMSE of ``--models``);
* ``kernel predictor`` (with ``--kernel-model DIR``, ``hwnas fit-cost --model kernel``) -
  each mbv3 primitive priced once through it into a table, summed per candidate and mapped
  onto its own whole-network prices of 24 sampled subnets; budgets at the same percentiles
  of its own prices, margin from the table's error against its whole-network prices (its
  error on the store's measured networks is reported: a bias no margin should hide).

For each target the bench MEASURES the derived subnet end to end (ONNX Runtime, 1 thread,
3 sessions, the profiler's robust estimate and the wall median) and reports
measured/predicted, whether it is within its budget, and the time per target. Baselines in
the same run: random subnets that meet the same budget (their real inherited accuracy, BN
recalibrated on the valid split), one of them measured too (measured/predicted of a subnet
the search did not choose), and the store's raw LUT sum of each derived subnet.

The search runs under budget x (1 - margin), margin = MARGIN_SIGMAS x the pricing's own
relative error (the store calibration's leave-one-out error on the store's rows, the cost
model's held-out error from its fit report), fixed before anything is measured here.

Every step reuses what WORK already holds (resumable): the supernet run, the store, the
cost model. Give --run-dir (and --store / --cost-model) to skip training (and profiling):

    OMP_NUM_THREADS=1 .venv/bin/python bench/ofa_specialize.py [--run-dir runs/ofa-bench/supernet]

(``bench/results/ofa_specialize_load16.json``: this bench run at load average 13-17 on 2 cores;
``bench/results/ofa_specialize_kernel_load.json``: with ``--kernel-model`` and ``--predictor``
at load average 21, a kernel predictor fitted here in 5 minutes under that load.)
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
RESULTS = ROOT / "bench" / "results"
CONFIG = "configs/search-mbv3-digits-ps.yaml"


def cli(*args: str) -> float:
    """One hwnas command in this process; its wall time (a failure ends the bench)."""
    from hwnas.cli import main

    t0 = time.perf_counter()
    if main(list(args)) != 0:
        raise SystemExit(f"hwnas {' '.join(args)} failed")
    return time.perf_counter() - t0


def supernet(run_dir: str | None, work: Path, steps: int, config: str) -> tuple[Path, float]:
    """The given run, or one trained into WORK/supernet with ``steps`` search steps."""
    if run_dir:
        return Path(run_dir), 0.0
    run = work / "supernet"
    if (run / "summary.yaml").is_file():
        return run, 0.0
    return run, cli("search", config, "--run-dir", str(run), "--steps", str(steps), "--restart")


def space_args(space_id: dict[str, Any]) -> list[str]:
    out = ["--space", str(space_id["type"])]
    for k, v in space_id.items():
        if k != "type":
            out += ["--space-opt", f"{k}={json.dumps(v).replace(' ', '')}"]
    return out


def cost_model(args: argparse.Namespace, work: Path, space_id: dict[str, Any]) -> tuple[Path, Path, float, float]:
    """(store, cost model folder, profiling + fitting seconds, the model's held-out relative RMSE)."""
    t = 0.0
    store = Path(args.store) if args.store else work / "mbv3.sqlite"
    if not store.is_file():
        t += cli("profile", *space_args(space_id), "--networks", str(args.networks), "--sessions", "1",
                 "--store", str(store), "--seed", "0")
    folder = Path(args.cost_model) if args.cost_model else work / "costmodels"
    if not args.cost_model and not (folder / "report.json").is_file():
        t += cli("fit-cost", "--store", str(store), "--device", "cpu", "--backend", "onnxruntime", "--model",
                 args.models, "--out", str(folder))
    report = json.loads((folder / "report.json").read_text()) if (folder / "report.json").is_file() else None
    if report is None:
        return store, folder, t, args.fallback_rel_rmse
    best = min(report["models"], key=lambda m: report["models"][m]["rmse"])
    return store, folder / best, t, float(report["models"][best]["rel_rmse"])


def measure(space: Any, arch: Any, repeats: int) -> dict[str, float]:
    """End-to-end latency of the subnet's network: ONNX Runtime, 1 thread, 3 sessions."""
    import statistics

    from hwnas import registry
    from hwnas.profilers.timing import TimingProtocol

    proto = TimingProtocol(threads=1, sessions=3, min_repeats=repeats, max_repeats=4 * repeats, min_time_ms=2.0)
    be = registry.get("backend", "onnxruntime")(device="cpu", threads=1)
    res = be.measure(space.to_network(arch), proto, with_energy=False)
    wall = statistics.median(res.samples_ms)
    return {"measured_ms": float(res.estimate_ms if res.estimate_ms is not None else wall), "wall_median_ms": wall,
            "samples": len(res.samples_ms), "flagged": bool(res.flagged)}


def random_feasible(space: Any, price: Any, budget: float, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    cand = [space.canonical(space.sample(rng)) for _ in range(40 * n)]
    return [a for a, c in zip(cand, price(cand)) if c <= budget][:n]


def pricings(args: argparse.Namespace, work: Path, run: Any) -> tuple[dict[str, Any], float]:
    """name -> (request, pricing, margin) of the store and of the fitted cost model."""
    from hwnas.cost_models.source import SourceRequest, open_source
    from hwnas.search.ofa.pricing import arch_pricing

    store, folder, cost_s, model_rel = cost_model(args, work, run.space_id())
    out: dict[str, Any] = {}
    requests = [("store", SourceRequest(store=str(store), device="cpu", backend="onnxruntime", option="--cost")),
                ("cost model", SourceRequest(model=str(folder), option="--cost"))]
    if args.kernel_model:
        requests.append(("kernel predictor", SourceRequest(model=args.kernel_model, option="--cost")))
    for name, req in requests:
        src = open_source(req)
        t0 = time.perf_counter()
        pricing = arch_pricing(src, run.space)
        rel = float(pricing.info.get("loo_rel_rmse", pricing.info.get("loo_rel_rmse_vs_source", model_rel)))
        out[name] = {"request": req, "src": src, "pricing": pricing, "rel_error": rel, "setup_s": time.perf_counter() - t0,
                     "margin": min(0.5, args.margin_sigmas * rel), "where": src.where}
        if name == "kernel predictor":  # its own error on the store's measured whole networks (a bias: no margin)
            out[name]["rel_error_on_store_networks"] = rel_error_on(pricing, out["store"]["pricing"].measured.values())
    return out, cost_s


def rel_error_on(pricing: Any, rows: Any) -> float:
    """Relative RMSE of a table pricing on (network, measured ms) rows."""
    nets, y = [n for n, _ in rows], np.array([v for _, v in rows])
    nodes = np.array([len(n.nodes) for n in nets], dtype=float)
    pred = pricing.calibration.apply(pricing.sums(nets), nodes) if pricing.calibration else pricing.sums(nets)
    return float(np.sqrt(np.mean(((pred - y) / y) ** 2)))


def one_row(t: dict[str, Any], p: dict[str, Any], run: Any, args: argparse.Namespace, i: int) -> dict[str, Any]:
    """The derived subnet measured end to end, beside random subnets within the same budget."""
    from hwnas.search.ofa.sampling import score_subnets

    sp = run.space
    arch = sp.validate(t["arch"])
    m = measure(sp, arch, args.repeats)
    rand = random_feasible(sp, p["pricing"], t["budget_ms"], args.random, seed=i)
    scored = score_subnets(run, [arch, *rand], seed=0)
    ref = measure(sp, rand[0], args.repeats) if rand else None  # the pricing on a subnet nobody chose
    raw_lut = float(p["src"].cost_archs(sp, [arch])[0]) if "store" in p["where"] or p["src"].additive else None
    return {"pricing": t["device"], "budget_ms": t["budget_ms"], "search_budget_ms": t["search_budget"],
            "predicted_ms": t["predicted_latency_ms"], **m,
            "measured_over_predicted": m["measured_ms"] / t["predicted_latency_ms"],
            "within_budget": m["measured_ms"] <= t["budget_ms"],
            "wall_within_budget": m["wall_median_ms"] <= t["budget_ms"], "seconds": t["seconds"],
            "raw_lut_ms": raw_lut, "predicted_accuracy": t["predicted_accuracy"],
            "inherited_accuracy": scored[0]["accuracy"],
            "random_inherited_accuracy": float(np.mean([s["accuracy"] for s in scored[1:]])) if rand else None,
            "random_n": len(rand),
            "random_measured_over_predicted": ref["measured_ms"] / float(p["pricing"]([rand[0]])[0]) if ref else None,
            "arch": t["arch_str"]}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    from hwnas.search.ofa.evolve import EvolutionOptions
    from hwnas.search.ofa.sampling import open_supernet_run
    from hwnas.search.ofa.specialize import SpecializeRequest, specialize
    from hwnas.search.ofa.targets import Target

    work = ROOT / args.work
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    run_dir, train_s = supernet(args.run_dir, work, args.steps, args.config)
    run = open_supernet_run(run_dir, "cpu")
    ps, cost_s = pricings(args, work, run)
    sp = run.space
    rng = np.random.default_rng(7)
    probe = [sp.canonical(sp.sample(rng)) for _ in range(500)]
    budgets = [float(b) for b in np.percentile(ps["store"]["pricing"](probe), args.percentiles)]
    rows, summaries = [], {}
    pred_dir = args.predictor
    for name, p in ps.items():  # one specialize call per pricing (its own margin); the predictor fitted once
        # the store and the cost model share the store's budgets; a kernel predictor of another
        # scale gets the same percentiles of its own prices (its measured/predicted then shows its bias)
        own = budgets if name != "kernel predictor" else \
            [float(b) for b in np.percentile(p["pricing"](probe), args.percentiles)]
        targets = [Target(name, p["request"], b, f"{name} budget p{q:g}") for b, q in zip(own, args.percentiles)]
        summary = specialize(SpecializeRequest(run_dir, targets, out=work / f"specialize-{name.replace(' ', '-')}",
                                               samples=args.samples, seed=0, margin=p["margin"], predictor=pred_dir,
                                               evolution=EvolutionOptions(), device="cpu"))
        pred_dir = pred_dir or summary["predictor"]["predictor"]
        summaries[name] = summary
        rows += [one_row(t, p, run, args, i) for i, t in enumerate(summary["targets"])]
    first = summaries["store"]
    return {"bench": "ofa_specialize", "data": "digits 16x16 (sklearn, 1,797 images): SMALL DATA",
            "run_dir": str(run_dir), "supernet_train_s": train_s, "profile_fit_s": cost_s,
            "pricings": {n: {"source": p["where"], "rel_error": p["rel_error"], "margin": p["margin"],
                             "setup_s": p["setup_s"], "rel_error_on_store_networks": p.get("rel_error_on_store_networks"),
                             **p["pricing"].info} for n, p in ps.items()},
            "predictor": first["predictor"], "predictor_s": first["predictor_s"], "targets": rows,
            "all_within_budget": {n: all(r["within_budget"] for r in rows if r["pricing"] == n) for n in ps},
            "max_target_s": max(r["seconds"] for r in rows),
            "load_avg_before": load_before, "load_avg_after": os.getloadavg(), "cpu_count": os.cpu_count(),
            "threads_env": os.environ.get("OMP_NUM_THREADS", "torch default"),
            "note": "timings on a 2-core machine shared with other jobs are inflated; measured_ms is the profiler's "
                    "robust (CPU-time) estimate, as in the store the pricings come from"}


def report(rec: dict[str, Any]) -> None:
    from hwnas.ui import format_table

    cols = ["pricing", "budget_ms", "predicted_ms", "measured_ms", "wall_median_ms", "measured_over_predicted",
            "within_budget", "raw_lut_ms", "random_measured_over_predicted", "seconds", "predicted_accuracy",
            "inherited_accuracy", "random_inherited_accuracy"]
    print(f"OFA specialisation on this CPU ({rec['data']})")
    for n, p in rec["pricings"].items():
        print(f"  pricing {n}: {p['pricing']} of {p['source']} (relative error {p['rel_error']:.3f}, "
              f"margin {p['margin']:.3f})")
    pm = rec["predictor"]["metrics"]
    print("accuracy predictor, held-out subnets (n={}): ".format(pm["ensemble"]["n"]) + "; ".join(
        f"{k} RMSE {v['rmse']:.4f} tau {v['kendall_tau']:.3f}" for k, v in pm.items() if k != "label_noise")
        + f" (ensemble = {rec['predictor'].get('chosen')})")
    ln = pm.get("label_noise")
    if ln:
        print(f"label noise: the held-out subnets scored twice (other calibration batches): label std "
              f"{ln['label_std']:.4f} (spread {ln['label_spread_std']:.4f}), tau between the two scorings "
              f"{ln['kendall_tau_between_scorings']:.3f} = the ceiling")
    print(format_table(rec["targets"], cols))
    print(f"all within budget: {rec['all_within_budget']}; max time per target {rec['max_target_s']:.2f} s; "
          f"total {rec['total_s']:.0f} s; load average {rec['load_avg_before'][0]:.1f} -> {rec['load_avg_after'][0]:.1f} "
          f"on {rec['cpu_count']} cores (timings under load are inflated)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", help="a trained supernet run (default: train one into WORK/supernet)")
    ap.add_argument("--config", default=CONFIG, help="config of the supernet trained when no --run-dir")
    ap.add_argument("--steps", type=int, default=30, help="search steps of that training (default 30)")
    ap.add_argument("--store", help="a profiled store of the run's space (default: profile into WORK)")
    ap.add_argument("--networks", type=int, default=40, help="networks profiled end to end (default 40)")
    ap.add_argument("--models", default="linear1,linear2,lstm", help="cost models fitted; best held-out RMSE used")
    ap.add_argument("--cost-model", help="a fitted cost model folder (skips profiling and fitting)")
    ap.add_argument("--predictor", help="a saved accuracy predictor of the run (default: fit one)")
    ap.add_argument("--kernel-model", help="also price by this kernel predictor folder (hwnas fit-cost --model kernel)")
    ap.add_argument("--fallback-rel-rmse", type=float, default=0.1, help="margin basis without a fit report")
    ap.add_argument("--margin-sigmas", type=float, default=2.0, help="margin = this x held-out relative RMSE")
    ap.add_argument("--percentiles", type=float, nargs="+", default=[10, 25, 40, 55, 70, 85],
                    help="budgets: these percentiles of random subnets' predicted latency")
    ap.add_argument("--samples", type=int, default=150, help="subnets scored for the accuracy predictor")
    ap.add_argument("--random", type=int, default=3, help="random feasible subnets scored per budget (baseline)")
    ap.add_argument("--repeats", type=int, default=20, help="minimum timed repeats per session")
    ap.add_argument("--work", default="runs/ofa-bench", help="work folder (relative to the project root)")
    ap.add_argument("--out", default=str(RESULTS / "ofa_specialize.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rec = run_bench(args)
    rec["total_s"] = time.perf_counter() - t0
    report(rec)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rec, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
