"""Benchmark: the OFA flow on this CPU from nothing, timed command by command.

train a supernet (progressive shrinking + KD) -> profile its space -> fit a cost model ->
specialise for two latency budgets -> fine-tune the tighter one from the supernet's
weights -> test it with a measured latency. Baseline in the same run: the same subnet
trained from scratch for the same epochs. Each step is its own ``hwnas`` process, as a
user would type it; the goal is <= 15 min on 2 cores. Data: digits (SMALL DATA).

``--pricing store`` specialises under the profiled store itself (LUT sum calibrated on its
whole-network rows, :mod:`hwnas.search.ofa.pricing`) instead of the fitted cost model.

``--imagenet-cpu`` runs ``configs/ofa-mbv3-imagenet-cpu.yaml`` in full (its own 480
supernet steps, no --steps override) on a GENERATED image folder (SMALL DATA: 1,500
32x32 PNGs, noisy copies of 10 random class prototypes, written into the work folder and
read back through ``dataset.type: imagefolder``), priced by the store, into
``bench/results/ofa_imagenet_cpu.json``:

    OMP_NUM_THREADS=1 .venv/bin/python bench/ofa_flow.py [--steps 30] [--epochs 5]
    OMP_NUM_THREADS=1 .venv/bin/python bench/ofa_flow.py --imagenet-cpu
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


def image_folder(root: Path, classes: int = 10, per_class: int = 150, size: int = 32, seed: int = 0) -> Path:
    """A generated image folder (root/<class>/*.png): each class a random low-resolution
    RGB prototype, each image the prototype upsampled plus low- and pixel-frequency noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(classes, 6, 6, 3))
    up = size // 6 + 1

    def upsample(x: np.ndarray) -> np.ndarray:
        return np.kron(x, np.ones((up, up, 1)))[:size, :size]

    for c in range(classes):
        folder = root / f"class_{c:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            x = upsample(protos[c] + 0.8 * rng.normal(size=(6, 6, 3))) + 0.3 * rng.normal(size=(size, size, 3))
            Image.fromarray(np.clip(128 + 45 * x, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def flow_config(args: argparse.Namespace, work: Path) -> str:
    """The config searched: the given one, or with --imagenet-cpu its dataset pointed at a
    generated image folder (everything else as the file says)."""
    if not args.imagenet_cpu:
        return args.config
    cfg = yaml.safe_load((ROOT / args.config).read_text())
    data = {k: v for k, v in cfg["dataset"].items() if k not in ("samples", "noise", "num_classes")}
    cfg["dataset"] = {**data, "type": "imagefolder", "root": str(image_folder(work / "images")), "in_memory": True}
    path = work / "search.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def cost_sources(args: argparse.Namespace, work: Path, run: Path, w: dict[str, float]) -> dict[str, Any]:
    """Profile the run's space, fit a cost model, and choose what specialisation is priced by."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    store = work / "store.sqlite"
    w["profile"], _ = hwnas("profile", *space_opts(cfg["search_space"]), "--networks", str(args.networks),
                            "--sessions", "1", "--store", str(store), "--seed", "0")
    w["fit_cost"], fit = hwnas("fit-cost", "--store", str(store), "--device", "cpu", "--backend",
                               "onnxruntime", "--model", "linear1,linear2", "--out", str(work / "costmodels"))
    models = fit["models"]
    best = min(models, key=lambda m: models[m]["rmse"])
    model = work / "costmodels" / best
    rec = {"cfg": cfg, "model": model, "best": best, "model_rel_rmse": float(models[best]["rel_rmse"])}
    if args.pricing == "store":
        from hwnas.cost_models.source import SourceRequest, open_source
        from hwnas.search.build import load_run_config
        from hwnas.search.ofa.pricing import arch_pricing

        sp = load_run_config(run / "config.yaml")["search_space"].build()
        pricing = arch_pricing(open_source(SourceRequest(store=str(store), device="cpu", backend="onnxruntime")), sp)
        rel = pricing.info.get("loo_rel_rmse", rec["model_rel_rmse"])
        return {**rec, "cost": f"store={store},device=cpu,backend=onnxruntime", "price": pricing, "rel_rmse": rel}
    from hwnas.cost_models.source import SourceRequest, open_source

    src = open_source(SourceRequest(model=str(model)))
    return {**rec, "cost": str(model), "price": lambda archs: src.cost_archs(sp_of(run), archs),
            "rel_rmse": rec["model_rel_rmse"]}


def sp_of(run: Path) -> Any:
    from hwnas.search.build import load_run_config

    return load_run_config(run / "config.yaml")["search_space"].build()


def budgets_of(run: Path, price: Any, percentiles: list[float]) -> tuple[list[float], float]:
    """Budgets: percentiles of the pricing's latency over random subnets of the run's space;
    and the cheapest of those subnets' prices (a search budget below it may be unreachable)."""
    space = sp_of(run)
    rng = np.random.default_rng(7)
    costs = price([space.canonical(space.sample(rng)) for _ in range(500)])
    return [round(float(b), 5) for b in np.percentile(costs, percentiles)], float(np.min(costs))


def search_margin(rel_rmse: float, tightest: float, cheapest: float) -> tuple[float, bool]:
    """Twice the pricing's own relative error (at most 0.5), lowered where it would put the
    tightest search budget below the cheapest sampled subnet (a noisy store's error can
    exceed the room the budgets leave); (margin, whether it was lowered)."""
    want = min(0.5, 2 * rel_rmse)
    room = max(0.0, 1 - 1.001 * cheapest / tightest)
    return (min(want, room), room < want)


def fine_tune_and_test(args: argparse.Namespace, work: Path, run: Path, spec: dict[str, Any], src: dict[str, Any],
                       w: dict[str, float]) -> dict[str, Any]:
    """Fine-tune the tighter subnet from the supernet and from scratch; test both, measured."""
    cfg, arch_file, tight = src["cfg"], spec["arch_file"], spec["targets"][0]
    cfg.setdefault("run", {}).setdefault("train", {})["dataset"] = {"resolution": int(tight["arch_str"][1:].split("|")[0])}
    (work / "train.yaml").write_text(yaml.safe_dump(cfg))
    results = {}
    for name, extra in (("fine_tune", ["--from-supernet", str(run)]), ("scratch", [])):
        w[f"train_{name}"], tr = hwnas("train", str(work / "train.yaml"), "--arch", arch_file, "--rank", "0",
                                       "--epochs", str(args.epochs), "--out", str(work / name), *extra)
        w[f"test_{name}"], te = hwnas("test", str(work / "train.yaml"), "--arch", arch_file, "--rank", "0",
                                      "--checkpoint", str(work / name / "checkpoint.pt"), "--profile",
                                      "--cost-model", str(src["model"]))
        results[name] = {"valid_accuracy_per_epoch": [h.get("valid_accuracy") for h in tr["history"]],
                         "test_accuracy": te["test_accuracy"], "latency_ms": te["latency_ms"],
                         "predicted_latency_ms": te.get("predicted_latency_ms")}
    return results


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/search-mbv3-digits-ps.yaml")
    ap.add_argument("--steps", type=int, default=30, help="supernet search steps (0: the config's own)")
    ap.add_argument("--networks", type=int, default=30, help="networks profiled end to end")
    ap.add_argument("--samples", type=int, default=100, help="subnets scored for the accuracy predictor")
    ap.add_argument("--epochs", type=int, default=5, help="fine-tuning (and from-scratch baseline) epochs")
    ap.add_argument("--pricing", choices=["model", "store"], default="model",
                    help="specialise under the fitted cost model or the profiled store itself")
    ap.add_argument("--imagenet-cpu", action="store_true",
                    help="configs/ofa-mbv3-imagenet-cpu.yaml in full on a generated image folder, store-priced")
    ap.add_argument("--work", default="runs/ofa-flow", help="work folder (emptied first)")
    ap.add_argument("--out", default=str(RESULTS / "ofa_flow.json"))
    args = ap.parse_args()
    if args.imagenet_cpu:
        args.config, args.steps, args.pricing = "configs/ofa-mbv3-imagenet-cpu.yaml", 0, "store"
        args.work = "runs/ofa-imagenet-cpu" if args.work == "runs/ofa-flow" else args.work
        args.out = str(RESULTS / "ofa_imagenet_cpu.json") if args.out.endswith("ofa_flow.json") else args.out
    return args


def main() -> None:
    args = parse()
    work = ROOT / args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load_before, t_all = os.getloadavg(), time.perf_counter()
    w: dict[str, float] = {}
    run = work / "supernet"
    steps = ["--steps", str(args.steps)] if args.steps else []
    config = flow_config(args, work)
    w["make_data"] = time.perf_counter() - t_all
    w["search"], _ = hwnas("search", config, "--run-dir", str(run), *steps, "--restart")
    src = cost_sources(args, work, run, w)
    budgets, cheapest = budgets_of(run, src["price"], [25, 75])
    margin, capped = search_margin(float(src["rel_rmse"]), budgets[0], cheapest)
    w["specialize"], spec = hwnas("specialize", str(run), "--cost", src["cost"], *[f"--budget-ms={b}" for b in budgets],
                                  "--samples", str(args.samples), "--margin", f"{margin:.4f}", "--out",
                                  str(work / "specialize"))
    results = fine_tune_and_test(args, work, run, spec, src, w)
    tight = spec["targets"][0]
    total = sum(v for k, v in w.items() if k not in ("train_scratch", "test_scratch"))
    data = ("generated image folder (1,500 32x32 PNGs, 10 classes, read at 24/20/16): SMALL GENERATED DATA"
            if args.imagenet_cpu else "digits 16x16 (sklearn): SMALL DATA")
    rec = {"bench": "ofa_imagenet_cpu" if args.imagenet_cpu else "ofa_flow", "data": data, "config": args.config,
           "steps": args.steps or "the config's own", "epochs": args.epochs, "pricing": args.pricing,
           "specialize_cost": src["cost"], "wall_s": {k: round(v, 1) for k, v in w.items()},
           "flow_total_s": round(total, 1), "goal_s": 900, "cost_model": src["best"],
           "cost_model_rel_rmse": src["model_rel_rmse"], "pricing_rel_rmse": src["rel_rmse"], "margin": margin,
           "margin_capped_by_cheapest_subnet": capped,
           "budgets_ms": budgets, "specialized": spec["targets"], "predictor_metrics": spec["predictor"]["metrics"],
           "derived": tight["arch_str"], "budget_ms": tight["budget_ms"], **results,
           "load_avg_before": load_before, "load_avg_end": os.getloadavg(), "cpu_count": os.cpu_count(),
           "threads_env": os.environ.get("OMP_NUM_THREADS", "torch default"),
           "note": "flow_total_s excludes the from-scratch baseline; timings on a shared 2-core machine are inflated; "
                   "latency_ms from hwnas test --profile is the wall median (load-sensitive); its "
                   "predicted_latency_ms is the fitted cost model's, the specialised targets' the pricing's"}
    report(rec, results, tight, args.out)


def report(rec: dict[str, Any], results: dict[str, Any], tight: dict[str, Any], out: str) -> None:
    print(f"OFA CPU flow ({rec['data']}): {rec['flow_total_s']} s (goal <= 900 s); steps {rec['wall_s']}")
    print(f"priced by {rec['specialize_cost']}; derived for {tight['budget_ms']} ms "
          f"(predicted {tight['predicted_latency_ms']:.4f}): {tight['arch_str']}")
    for name in ("fine_tune", "scratch"):
        r = results[name]
        print(f"{name:9s} test accuracy {r['test_accuracy']:.4f}  latency {r['latency_ms']:.4f} ms "
              f"(cost model {r['predicted_latency_ms']:.4f})  valid per epoch {r['valid_accuracy_per_epoch']}")
    print(f"load average {rec['load_avg_before'][0]:.1f} -> {rec['load_avg_end'][0]:.1f} on {rec['cpu_count']} cores")
    Path(out).write_text(json.dumps(rec, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
