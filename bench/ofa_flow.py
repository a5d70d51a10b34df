"""Benchmark: the OFA flow on this CPU from nothing, timed command by command.

train a supernet (progressive shrinking + KD) -> profile its space -> fit a cost model ->
specialise for two latency budgets -> fine-tune the tighter one from the supernet's
weights -> test it with a measured latency. Baseline in the same run: the same subnet
trained from scratch for the same epochs. Each step is its own ``hwnas`` process, as a
user would type it; the goal is <= 15 min on 2 cores. Data: digits (SMALL DATA).

    OMP_NUM_THREADS=1 .venv/bin/python bench/ofa_flow.py [--steps 30] [--epochs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def hwnas(*args: str) -> tuple[float, Any]:
    """Run one hwnas command (JSON output); its wall time and parsed result."""
    exe = Path(sys.executable).parent / "hwnas"
    t0 = time.perf_counter()
    out = subprocess.run([str(exe), *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"hwnas {' '.join(args)} failed: {out.stderr.strip()[-400:]}")
    return wall, json.loads(out.stdout)


def space_opts(space: dict[str, Any]) -> list[str]:
    out = ["--space", str(space["type"])]
    for k, v in space.items():
        if k != "type":
            out += ["--space-opt", f"{k}={json.dumps(v).replace(' ', '')}"]
    return out


def budgets_of(run: Path, model: Path, percentiles: list[float]) -> list[float]:
    """Budgets: percentiles of the cost model's latency over random subnets of the run's space."""
    from hwnas.cost_models.source import SourceRequest, open_source
    from hwnas.search.build import load_run_config

    space = load_run_config(run / "config.yaml")["search_space"].build()
    rng = np.random.default_rng(7)
    costs = open_source(SourceRequest(model=str(model))).cost_archs(space, [space.sample(rng) for _ in range(500)])
    return [round(float(b), 5) for b in np.percentile(costs, percentiles)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/search-mbv3-digits-ps.yaml")
    ap.add_argument("--steps", type=int, default=30, help="supernet search steps")
    ap.add_argument("--networks", type=int, default=30, help="networks profiled end to end")
    ap.add_argument("--samples", type=int, default=100, help="subnets scored for the accuracy predictor")
    ap.add_argument("--epochs", type=int, default=5, help="fine-tuning (and from-scratch baseline) epochs")
    ap.add_argument("--work", default="runs/ofa-flow", help="work folder (emptied first)")
    ap.add_argument("--out", default=str(RESULTS / "ofa_flow.json"))
    args = ap.parse_args()
    work = ROOT / args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    w = {}
    run = work / "supernet"
    w["search"], _ = hwnas("search", args.config, "--run-dir", str(run), "--steps", str(args.steps), "--restart")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    w["profile"], _ = hwnas("profile", *space_opts(cfg["search_space"]), "--networks", str(args.networks),
                            "--sessions", "1", "--store", str(work / "store.sqlite"), "--seed", "0")
    w["fit_cost"], fit = hwnas("fit-cost", "--store", str(work / "store.sqlite"), "--device", "cpu", "--backend",
                               "onnxruntime", "--model", "linear1,linear2", "--out", str(work / "costmodels"))
    models = fit["models"]
    best = min(models, key=lambda m: models[m]["rmse"])
    model, margin = work / "costmodels" / best, min(0.5, 2 * float(models[best]["rel_rmse"]))
    budgets = budgets_of(run, model, [25, 75])
    w["specialize"], spec = hwnas("specialize", str(run), "--cost", str(model), *[f"--budget-ms={b}" for b in budgets],
                                  "--samples", str(args.samples), "--margin", f"{margin:.4f}", "--out",
                                  str(work / "specialize"))
    arch_file = spec["arch_file"]
    tight = spec["targets"][0]
    cfg.setdefault("run", {}).setdefault("train", {})["dataset"] = {"resolution": int(tight["arch_str"][1:].split("|")[0])}
    (work / "train.yaml").write_text(yaml.safe_dump(cfg))
    results = {}
    for name, extra in (("fine_tune", ["--from-supernet", str(run)]), ("scratch", [])):
        w[f"train_{name}"], tr = hwnas("train", str(work / "train.yaml"), "--arch", arch_file, "--rank", "0",
                                       "--epochs", str(args.epochs), "--out", str(work / name), *extra)
        w[f"test_{name}"], te = hwnas("test", str(work / "train.yaml"), "--arch", arch_file, "--rank", "0",
                                      "--checkpoint", str(work / name / "checkpoint.pt"), "--profile",
                                      "--cost-model", str(model))
        results[name] = {"valid_accuracy_per_epoch": [h.get("valid_accuracy") for h in tr["history"]],
                         "test_accuracy": te["test_accuracy"], "latency_ms": te["latency_ms"],
                         "predicted_latency_ms": te.get("predicted_latency_ms")}
    total = sum(v for k, v in w.items() if k not in ("train_scratch", "test_scratch"))
    rec = {"bench": "ofa_flow", "data": "digits 16x16 (sklearn): SMALL DATA", "config": args.config,
           "steps": args.steps, "epochs": args.epochs, "wall_s": {k: round(v, 1) for k, v in w.items()},
           "flow_total_s": round(total, 1), "goal_s": 900, "cost_model": best,
           "cost_model_rel_rmse": models[best]["rel_rmse"], "margin": margin, "budgets_ms": budgets,
           "specialized": spec["targets"], "predictor_metrics": spec["predictor"]["metrics"], "derived": tight["arch_str"],
           "budget_ms": tight["budget_ms"], **results, "load_avg_end": os.getloadavg(),
           "threads_env": os.environ.get("OMP_NUM_THREADS", "torch default"),
           "note": "flow_total_s excludes the from-scratch baseline; timings on a shared 2-core machine are inflated; "
                   "latency_ms from hwnas test --profile is the wall median (load-sensitive)"}
    print(f"OFA CPU flow ({rec['data']}): {rec['flow_total_s']} s (goal <= 900 s); steps {rec['wall_s']}")
    print(f"derived for {tight['budget_ms']} ms: {tight['arch_str']}")
    for name in ("fine_tune", "scratch"):
        r = results[name]
        print(f"{name:9s} test accuracy {r['test_accuracy']:.4f}  latency {r['latency_ms']:.4f} ms "
              f"(predicted {r['predicted_latency_ms']:.4f})  valid per epoch {r['valid_accuracy_per_epoch']}")
    Path(args.out).write_text(json.dumps(rec, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
