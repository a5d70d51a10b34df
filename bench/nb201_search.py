"""Search strategies on real NAS-Bench-201 numbers: queries to the optimum, then accuracy x latency.

Every run is the real search loop (``simple`` trainer, ``table`` evaluator reading the
CIFAR-10 test accuracy of all 15,625 cells), with the budget counted in distinct
architectures looked up (the evaluator's ``queries``), equal for every controller.

1. Single objective: for each registered controller (those that cannot run on a table
   are listed as skipped), ``--seeds`` seeds: number of queries until the global
   optimum (94.37 %; two cells share it) is found - median and 90th percentile (``null``
   when more than 10 % of the seeds did not find it within ``--budget``) - and the regret
   curve (optimum minus best found), written as a PNG.
2. Multi-objective, per device column of the latency table: accuracy x latency with the
   ``pareto`` (NSGA-II) controller, the ``predictor`` controller in Pareto mode (it ranks
   accuracy and reads latency from the same table as the objective: latency is a cheap,
   known cost, accuracy is the counted query) and ``random``; hypervolume of the found
   front after 100 / 300 / 1,000 queries divided by that of the true front, computed
   exactly from all cells. Both objectives are min-max normalised over all cells of the
   device, the reference point is the worst of both (accuracy 10 %, slowest cell); a
   stricter ratio with the true front's own nadir as reference is reported beside it.

    .venv/bin/python bench/nb201_search.py [--seeds 20] [--budget 1000]
        [--mo-seeds 5] [--devices all] [--controllers all]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / ".." / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"

#: Options per controller (anything not named runs with its defaults) and rollouts per step.
OPTIONS: dict[str, dict[str, Any]] = {
    "evolution": {"population": 20, "sample_size": 5},
    "annealing": {"t0": 1.0, "cooling": 0.97},
    "pareto": {"population": 50, "perfs": ["accuracy:max"]},
    "predictor": {},  # its defaults: init 10, pool 100 random + 500 mutations of the 10 best, 30 Adam steps
}
BATCH: dict[str, int] = {"rl": 10}
MO_OPTIONS: dict[str, dict[str, Any]] = {
    "pareto": {"population": 50, "perfs": []},
    "predictor": {"init": 20, "pool": 300, "mutations": 700, "parents": 20, "iters": 20, "retrain_growth": 0.1,
                  "pareto": True, "target": "accuracy"},
    "random": {},
}
CHECKPOINTS = (100, 300, 1000)


def make_trainer(controller: str, opts: dict[str, Any], seed: int, batch: int, acc_csv: Path,
                 objective: dict[str, Any]) -> Any:
    from hwnas.config import parse_config
    from hwnas.search.build import build_component, build_components, trainer_config

    cfg = parse_config({
        "seed": seed, "search_space": {"type": "nb201"}, "controller": {"type": controller, **opts},
        "evaluator": {"type": "table", "table": str(acc_csv), "perfs": {"accuracy": "cifar10_test_acc"}},
        "objective": objective,
        "trainer": {"type": "simple", "steps": 10 ** 6, "rollouts_per_step": batch, "checkpoint_every": 0,
                    "reuse": True, "plot": False}}, base=ROOT)
    comps = build_components(cfg)
    return build_component(trainer_config(cfg), components=comps, run_dir=None, seed=seed)


def drive(trainer: Any, budget: int, on_query: Any, stop: Any = lambda: False, stall: int = 200) -> int:
    """Step until ``budget`` distinct queries, ``stop()``, or ``stall`` steps in a row without a
    new query (a converged policy that only proposes what it has seen); ``on_query`` per new query."""
    ev, seen, idle = trainer.c.evaluator, set(), 0
    while len(seen) < budget and idle < stall and not stop():
        idle += 1
        for r in trainer.step():
            if r.info.get("reused") or r.arch in seen or len(seen) >= budget:
                continue
            seen.add(r.arch)
            idle = 0
            on_query(r)
    assert ev.queries >= len(seen)
    return len(seen)


def single_objective(name: str, seeds: int, budget: int, acc_csv: Path, optimum: float) -> dict[str, Any]:
    curves, found, t0 = [], [], time.perf_counter()
    for seed in range(seeds):
        best = [-np.inf]
        curve: list[float] = []

        def on_query(r: Any) -> None:
            best[0] = max(best[0], r.perfs["accuracy"])
            curve.append(best[0])

        trainer = make_trainer(name, OPTIONS.get(name, {}), seed, BATCH.get(name, 1), acc_csv,
                               {"type": "classification"})
        drive(trainer, budget, on_query, stop=lambda: bool(curve) and curve[-1] >= optimum)
        hit = next((i + 1 for i, v in enumerate(curve) if v >= optimum), None)
        found.append(hit)
        curves.append(curve + [curve[-1]] * (budget - len(curve)))
    q = np.array([f if f is not None else 10 * budget for f in found], dtype=float)  # not found: > budget
    med, p90 = (float(np.percentile(q, p)) for p in (50, 90))
    regret = optimum - np.array(curves)
    return {"queries_to_optimum": found, "median": med if med <= budget else None,
            "p90": p90 if p90 <= budget else None, "found": sum(f is not None for f in found), "seeds": seeds,
            "batch": BATCH.get(name, 1),
            "options": OPTIONS.get(name, {}), "seconds": round(time.perf_counter() - t0, 1),
            "median_regret": {str(c): float(np.median(regret[:, c - 1])) for c in CHECKPOINTS if c <= budget},
            "regret_curve_median": np.median(regret, 0).round(4).tolist()}


def plot_regret(path: Path, results: dict[str, Any], budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    x = np.arange(1, budget + 1)
    for name, res in results.items():
        if "regret_curve_median" in res:
            ax.plot(x, np.maximum(res["regret_curve_median"], 1e-3), label=f"{name} (median {res['median']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("queries (distinct architectures evaluated)")
    ax.set_ylabel("regret: 94.37 - best test accuracy (%)")
    ax.set_title("NAS-Bench-201 CIFAR-10, median over seeds (1e-3 = optimum found)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def normalised(acc: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Maximisation matrix (accuracy, -latency), both scaled to [0, 1] over all cells."""
    return np.column_stack([(acc - acc.min()) / (acc.max() - acc.min()), -(lat - lat.min()) / (lat.max() - lat.min())])


def true_front_refs(F: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], dict[str, float]]:
    from hwnas.search.controllers.pareto import hypervolume_2d

    front = F[_front_mask(F)]
    table_ref = (0.0, -1.0)
    front_ref = (float(front[:, 0].min()) - 1e-9, float(front[:, 1].min()) - 1e-9)
    hv = {"table": hypervolume_2d(F, table_ref), "front": hypervolume_2d(front, front_ref), "points": len(front)}
    return table_ref, front_ref, hv


def _front_mask(F: np.ndarray) -> np.ndarray:
    order = np.lexsort((-F[:, 1], -F[:, 0]))
    mask, best = np.zeros(len(F), bool), -np.inf
    for i in order:
        if F[i, 1] > best:
            mask[i], best = True, F[i, 1]
    return mask


def multi_objective(device: str, names: list[str], seeds: int, budget: int, acc_csv: Path, lat_csv: Path,
                    table: Any) -> dict[str, Any]:
    from hwnas.search.controllers.pareto import hypervolume_2d

    F_all = normalised(table["cifar10_test_acc"].to_numpy(), table[device].to_numpy())
    row = {s: i for i, s in enumerate(table["arch_str"])}
    table_ref, front_ref, hv_true = true_front_refs(F_all)
    objective = {"type": "composite", "objectives": [
        {"type": "classification"}, {"type": "hardware", "table": str(lat_csv), "column": device, "weight": 0.0}]}
    out: dict[str, Any] = {"true_front_points": hv_true["points"]}
    for name in names:
        ratios: dict[str, list[float]] = {f"{c}": [] for c in CHECKPOINTS if c <= budget}
        strict: dict[str, list[float]] = {k: [] for k in ratios}
        t0 = time.perf_counter()
        for seed in range(seeds):
            trainer = make_trainer(name, MO_OPTIONS.get(name, {}), seed, 10, acc_csv, objective)
            idx: list[int] = []

            def on_query(r: Any) -> None:
                idx.append(row[trainer.c.space.to_str(r.arch)])
                if len(idx) in CHECKPOINTS:
                    pts = F_all[idx]
                    ratios[str(len(idx))].append(hypervolume_2d(pts, table_ref) / hv_true["table"])
                    strict[str(len(idx))].append(hypervolume_2d(pts, front_ref) / hv_true["front"])
            drive(trainer, budget, on_query)
        out[name] = {"hv_ratio_median": {k: float(np.median(v)) for k, v in ratios.items()},
                     "hv_ratio_min": {k: float(np.min(v)) for k, v in ratios.items()},
                     "hv_ratio_front_ref_median": {k: float(np.median(v)) for k, v in strict.items()},
                     "seconds": round(time.perf_counter() - t0, 1)}
    return out


def run_single(names: list[str], args: Any, acc_csv: Path, optimum: float) -> dict[str, Any]:
    """Part 1 for every controller; prints the table and writes the regret PNG."""
    from hwnas.errors import HwnasError
    from hwnas.ui import format_table

    so: dict[str, Any] = {}
    for name in names:
        try:
            so[name] = single_objective(name, args.seeds, args.budget, acc_csv, optimum)
        except HwnasError as exc:
            so[name] = {"skipped": str(exc)}
        print(f"{name}: {({k: v for k, v in so[name].items() if k not in ('regret_curve_median',)})}", flush=True)
    rows = [{"controller": n, "median": r.get("median"), "p90": r.get("p90"), "found": r.get("found"),
             **{f"regret@{c}": r.get("median_regret", {}).get(str(c)) for c in CHECKPOINTS}, "s": r.get("seconds")}
            for n, r in so.items()]
    print(f"\nqueries to the NAS-Bench-201 CIFAR-10 optimum ({optimum}), {args.seeds} seeds, budget {args.budget}")
    print(format_table(rows))
    plot_regret(Path(args.png), {n: r for n, r in so.items() if "median" in r}, args.budget)
    return so


def run_multi(devices: list[str], names: list[str], args: Any, acc_csv: Path, lat_csv: Path,
              table: Any) -> dict[str, Any]:
    """Part 2 for every device; prints each device as it is done, then the table."""
    from hwnas.ui import format_table

    mo = {}
    for d in devices:
        mo[d] = multi_objective(d, names, args.mo_seeds, args.budget, acc_csv, lat_csv, table)
        print(d, {n: mo[d][n]["hv_ratio_median"] for n in names}, flush=True)
    if mo:
        print(f"\nhypervolume ratio (found / true front) after {CHECKPOINTS} queries, median of {args.mo_seeds} seeds")
        print(format_table([{"device": d, **{f"{n}@{c}": res[n]["hv_ratio_median"].get(str(c)) for n in names
                                            for c in CHECKPOINTS}} for d, res in mo.items()]))
    return mo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accuracy", default=str(DATA / "nb201-accuracy" / "nb201_cifar10_accuracy.csv"))
    ap.add_argument("--latency", default=str(DATA / "device-latency" / "nb201_latency.csv"))
    ap.add_argument("--seeds", type=int, default=20, help="seeds per controller (single objective)")
    ap.add_argument("--budget", type=int, default=1000, help="queries per run")
    ap.add_argument("--controllers", default="all", help="comma list, or all registered")
    ap.add_argument("--mo-seeds", type=int, default=5, help="seeds per controller and device (multi-objective)")
    ap.add_argument("--devices", default="all", help="comma list of latency columns, or all; '' skips part 2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "nb201_search.json"))
    ap.add_argument("--png", default=str(RESULTS / "nb201_search_regret.png"))
    args = ap.parse_args()
    acc_csv, lat_csv = Path(args.accuracy), Path(args.latency)
    if not acc_csv.is_file() or not lat_csv.is_file():
        print(f"skipped: no dataset at {acc_csv} / {lat_csv}")
        return 0

    import pandas as pd
    import torch

    from hwnas import registry

    torch.set_num_threads(args.threads)
    table = pd.read_csv(acc_csv).merge(pd.read_csv(lat_csv), on="arch_str")
    optimum = float(table["cifar10_test_acc"].max())
    names = [e.name for e in registry.list("controller")] if args.controllers == "all" else args.controllers.split(",")
    so = run_single(names, args, acc_csv, optimum)
    devices = [c for c in table.columns if c.endswith("_ms")] if args.devices == "all" else \
        [d for d in args.devices.split(",") if d]
    # multi-objective: the controllers that take the objective's directions, and random as the baseline
    mo_names = [e.name for e in registry.list("controller") if hasattr(e.obj, "set_directions")] + ["random"]
    mo = run_multi(devices, mo_names, args, acc_csv, lat_csv, table)
    doc = {"benchmark": "nb201_search", "optimum": optimum, "seeds": args.seeds, "budget": args.budget,
           "single_objective": so, "multi_objective": mo, "mo_seeds": args.mo_seeds,
           "mo_options": {n: MO_OPTIONS.get(n, {}) for n in mo_names}, "torch_threads": args.threads,
           "regret_png": str(Path(args.png).relative_to(ROOT)) if Path(args.png).is_relative_to(ROOT) else args.png}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
