"""`make demo`: the whole main job end to end on this CPU, with real measurements.

profile the mbv2 space (primitives + sampled networks, ONNX Runtime) -> fit every cost
model and print the held-out table -> latency-constrained search with the mbv2 supernet
and the shared-weights (mepa) evaluator on scikit-learn's digits, using the best cost
model as the hardware objective -> derive the best architecture -> train it from
scratch -> test it and measure its latency beside the cost model's prediction.

Every number printed comes from this run; nothing is canned. Each step is one `hwnas`
command (shown before it runs), so the demo doubles as a worked example of the CLI.
The budget is taken from the networks measured in step 1 (their 40th percentile), so
the constraint bites on any machine.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hwnas.cli import main as hwnas_main
from hwnas.errors import HwnasError

SPACE_OPTS = {"resolution": 32, "width": 0.35, "in_channels": 1, "num_classes": 10}


def _run(args: list[str]) -> None:
    sys.stdout.write(f"\n$ hwnas {' '.join(shlex.quote(a) for a in args)}\n")
    sys.stdout.flush()
    rc = hwnas_main(args)
    if rc != 0:
        raise SystemExit(f"demo: `hwnas {args[0]}` failed with status {rc}")


def _banner(text: str) -> None:
    sys.stdout.write(f"\n=== {text} ===\n")


def _budget_from_store(store: Path, quantile: float) -> float:
    from hwnas.store import Store

    with Store(store, readonly=True) as st:
        vals = [r["latency_ms"] for r in st.query(kind="network", ok_only=True, latest=True)]
    if not vals:
        raise SystemExit("demo: no network measurements in the store")
    return float(np.quantile(vals, quantile))


def _best_model(report: Path) -> str:
    rows = json.loads(report.read_text())["models"]
    return min(rows, key=lambda name: rows[name]["rmse"])


def search_config(model_dir: Path, budget: float, steps: int) -> dict[str, Any]:
    return {
        "seed": 0,
        "dataset": {"type": "digits", "resolution": SPACE_OPTS["resolution"], "channels": SPACE_OPTS["in_channels"]},
        "search_space": {"type": "mbv2", **SPACE_OPTS},
        "controller": {"type": "evolution", "population": 8, "sample_size": 3},
        "weights_manager": {"type": "supernet"},
        "evaluator": {"type": "mepa", "steps": 25, "batch_size": 64, "lr": 0.05, "eval_batches": 2,
                      "calib_batches": 2},
        "objective": {"type": "composite", "objectives": [
            {"type": "classification", "split": "valid"},
            {"type": "hardware", "metric": "latency", "model": str(model_dir.resolve()), "mode": "constraint",
             "budget": round(budget, 4)},
        ]},
        "trainer": {"type": "simple", "steps": steps, "rollouts_per_step": 2, "evaluator_updates": 1,
                    "checkpoint_every": 5, "reuse": True},
        "run": {"train": {"epochs": 6, "batch_size": 64, "lr": 0.05}},
    }


def run(out: Path, *, networks: int, steps: int) -> None:
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store.sqlite"
    t0 = time.perf_counter()
    space_args = [a for k, v in SPACE_OPTS.items() for a in ("--space-opt", f"{k}={v}")]

    _banner("1/6 profile the mbv2 space on this CPU (ONNX Runtime, 1 thread)")
    _run(["profile", "--space", "mbv2", *space_args, "--device", "cpu", "--backend", "onnxruntime",
          "--networks", str(networks), "--store", str(store), "--seed", "0"])

    _banner("2/6 fit cost models on the measured networks (30% held out)")
    models = out / "costmodels"
    _run(["fit-cost", "--store", str(store), "--device", "cpu", "--backend", "onnxruntime", "--model", "all",
          "--target", "latency", "--out", str(models)])
    best = _best_model(models / "report.json")
    budget = _budget_from_store(store, 0.4)
    sys.stdout.write(f"\nbest cost model by held-out RMSE: {best}; latency budget (40th percentile of the measured "
                     f"networks): {budget:.3f} ms\n")

    _banner("3/6 latency-constrained search: mbv2 supernet + mepa on digits")
    cfg_path = out / "search.yaml"
    cfg_path.write_text("# written by `make demo` from this run's measurements\n"
                        + yaml.safe_dump(search_config(models / best, budget, steps), sort_keys=False))
    run_dir = out / "search"
    _run(["search", str(cfg_path), "--run-dir", str(run_dir), "--restart"])

    _banner("4/6 derive the best architectures")
    best_yaml = out / "best.yaml"
    _run(["derive", str(run_dir), "--top", "3", "--out", str(best_yaml)])

    _banner("5/6 train the best architecture from scratch")
    final = out / "final"
    _run(["train", str(cfg_path), "--arch", str(best_yaml), "--out", str(final)])

    _banner("6/6 test it: accuracy, measured latency vs the cost model's prediction")
    _run(["test", str(cfg_path), "--arch", str(best_yaml), "--checkpoint", str(final / "checkpoint.pt"),
          "--profile", "--cost-model", str(models / best)])
    sys.stdout.write(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; everything is under {out}/ "
                     f"(Pareto front: {run_dir / 'pareto.png'}, cost-model plots: {models}/)\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwnas.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo-run", help="output folder (default: %(default)s)")
    p.add_argument("--networks", type=int, default=80, help="networks to profile (default: %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="search steps (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        run(Path(args.out), networks=args.networks, steps=args.steps)
    except HwnasError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
