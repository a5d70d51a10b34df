"""Fault-tolerance search vs accuracy-only search, and fault-aware training (SMALL DATA: digits).

For each seed, two train-from-scratch searches of the same small NAS-Bench-201 space on
scikit-learn's digits (8x8, grey) run with the same controller, evaluator and budget:
one rewards clean validation accuracy (``classification``), the other accuracy under
random bit flips in the int8-stored weights (``fault_tolerance``, ``--draws`` seeded
draws on the validation split). Each search's winner (its best rollout) is then
*measured* apart from the search: retrained the same seeded way, scored on the held-out
**test** split, clean and under ``--measure-draws`` fresh fault draws (another seed
than the search's). The bit-flip rate (``--rate``) is one at which the accuracy-only
winners lose at least 5 points; the table reports that drop.

Second part: one fixed architecture (``--arch``) trained plainly and with fault-aware
training (``robust: {method: faults}``: each step's forward and backward under a fresh
draw of the same fault model), both measured the same way.

    .venv/bin/python bench/robust_faults.py [--seeds 0 1 2] [--steps 20] [--rate 0.015]

Writes bench/results/robust_faults.json. Timings on a shared 2-core machine are inflated.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"


def faults(rate: float) -> list[dict[str, Any]]:
    return [{"target": "weights", "kind": "bitflip", "rate": rate, "format": "int8"}]


def base_config(args: argparse.Namespace, seed: int, objective: dict[str, Any],
                robust: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run config: digits at 8x8, a small nb201 space, evolution, tune, simple trainer."""
    tune = {"type": "tune", "epochs": args.epochs, "batch_size": 64, "lr": 0.05, "threads": 1}
    if robust:
        tune["robust"] = robust
    return {"seed": seed,
            "dataset": {"type": "digits", "resolution": 8, "channels": 1},
            "search_space": {"type": "nb201", "channels": args.channels, "cells_per_stage": 1, "resolution": 8,
                             "in_channels": 1, "num_classes": 10},
            "controller": {"type": "evolution", "population": 8, "sample_size": 3},
            "weights_manager": {"type": "plain"},
            "evaluator": tune,
            "objective": objective,
            "trainer": {"type": "simple", "steps": args.steps, "rollouts_per_step": 1, "checkpoint_every": 0,
                        "reuse": True, "plot": False}}


def write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def search_winner(cfg: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run the search a config describes; its best rollout."""
    from hwnas.search.api import run_search
    from hwnas.search.report import derive

    run_dir = folder / "run"
    run_search(write(cfg, folder / "config.yaml"), run_dir=run_dir, restart=True, device="cpu")
    return derive(run_dir, top=1)[0]


def measure(args: argparse.Namespace, seed: int, arch: str, folder: Path,
            robust: dict[str, Any] | None = None) -> dict[str, float]:
    """Retrain ``arch`` (the tune evaluator's seeded training) and score it on the test
    split: clean accuracy and accuracy under fresh fault draws."""
    from hwnas.search.api import evaluate_archs

    objective = {"type": "composite", "objectives": [
        {"type": "classification", "split": "test"},
        {"type": "fault_tolerance", "split": "test", "draws": args.measure_draws, "seed": 9973,
         "faults": faults(args.rate)}]}
    path = write(base_config(args, seed, objective, robust), folder / "measure.yaml")
    (row,) = evaluate_archs(path, [arch], device="cpu")
    return {"accuracy": row["accuracy"], "fault_accuracy": row["fault_accuracy"],
            "fault_accuracy_std": row["fault_accuracy_std"]}


def cached(args: argparse.Namespace, name: str, compute: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """``compute()``'s result, kept in ``--runs``/NAME.json with the settings (``keys``)
    that made it, so a killed bench resumes and seeds can run in parallel processes."""
    settings = {k: getattr(args, k) for k in keys}
    path = Path(args.runs) / f"{name}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        if {k: data.get("settings", {}).get(k) for k in keys} == settings:
            return data["result"]
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "result": result}, indent=1))
    return result


def one_search(args: argparse.Namespace, tmp: Path, seed: int, name: str, objective: dict[str, Any]) -> dict[str, Any]:
    folder = tmp / f"{name}-{seed}"
    folder.mkdir()
    t0 = time.perf_counter()
    best = search_winner(base_config(args, seed, objective), folder)
    out = {"search_s": round(time.perf_counter() - t0, 1), "arch": best["arch_str"],
           "search_reward": best["reward"], "measured": measure(args, seed, best["arch_str"], folder)}
    print(f"seed {seed} {name}: {out}", flush=True)
    return out


def compare_searches(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    objectives = {"accuracy": {"type": "classification", "split": "valid"},
                  "fault": {"type": "fault_tolerance", "split": "valid", "draws": args.draws, "seed": 0,
                            "faults": faults(args.rate)}}
    for seed in args.seeds:
        row: dict[str, Any] = {"seed": seed}
        for name, objective in objectives.items():
            keys = ("steps", "epochs", "channels", "rate", "measure_draws") + (("draws",) if name == "fault" else ())
            res = cached(args, f"{name}-seed{seed}", lambda: one_search(args, tmp, seed, name, objective), keys)
            row[f"{name}_search_s"] = res["search_s"]
            row[f"{name}_arch"] = res["arch"]
            row[f"{name}_measured"] = res["measured"]
        rows.append(row)
    return rows


def fault_aware(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        out: dict[str, Any] = {"arch": args.arch}
        robust = {"method": "faults", "faults": faults(args.train_rate)}
        for name, rb in (("plain", None), ("fault_aware", robust)):
            folder = tmp / f"fat-{name}"
            folder.mkdir()
            out[name] = measure(args, 0, args.arch, folder, rb)
            print(f"fixed arch, {name} training: {out[name]}", flush=True)
        return out
    return cached(args, "fault-aware", compute, ("epochs", "channels", "rate", "measure_draws", "arch", "train_rate"))


def table(rows: list[dict[str, Any]], fat: dict[str, Any]) -> str:
    lines = ["seed  winner of      clean_acc  fault_acc (std)   drop    arch",
             "----  -------------  ---------  ----------------  ------  ----"]
    for r in rows:
        for name in ("accuracy", "fault"):
            m = r[f"{name}_measured"]
            lines.append(f"{r['seed']:>4}  {name + '-search':<13}  {m['accuracy']:9.4f}  {m['fault_accuracy']:.4f} "
                         f"({m['fault_accuracy_std']:.3f})  {m['accuracy'] - m['fault_accuracy']:+.3f}  "
                         f"{r[f'{name}_arch']}")
    lines.append("")
    lines.append(f"fixed arch {fat['arch']}:")
    for name in ("plain", "fault_aware"):
        m = fat[name]
        lines.append(f"  {name:<12} clean {m['accuracy']:.4f}  under faults {m['fault_accuracy']:.4f} "
                     f"({m['fault_accuracy_std']:.3f})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=20, help="rollouts per search")
    ap.add_argument("--epochs", type=int, default=4, help="training epochs per candidate")
    ap.add_argument("--channels", type=int, default=8, help="nb201 channels (C)")
    ap.add_argument("--rate", type=float, default=0.015, help="per-bit flip rate of the int8 weights")
    ap.add_argument("--draws", type=int, default=20, help="fault draws per candidate in the search")
    ap.add_argument("--measure-draws", type=int, default=20, help="fault draws when measuring the winners")
    ap.add_argument("--arch", default="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                      "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                    help="fixed architecture of the fault-aware training comparison")
    ap.add_argument("--train-rate", type=float, default=0.015, help="flip rate injected by fault-aware training")
    ap.add_argument("--runs", default=str(RESULTS / "robust_faults_runs"),
                    help="folder of per-search results (resume; run seeds in parallel processes)")
    ap.add_argument("--part", choices=["all", "searches", "fault_aware"], default="all")
    ap.add_argument("--out", default=str(RESULTS / "robust_faults.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = compare_searches(args, Path(tmp)) if args.part != "fault_aware" else []
        fat = fault_aware(args, Path(tmp)) if args.part != "searches" else {}
    if args.part != "all":
        return 0
    wins = sum(r["fault_measured"]["fault_accuracy"] > r["accuracy_measured"]["fault_accuracy"] for r in rows)
    drops = [r["accuracy_measured"]["accuracy"] - r["accuracy_measured"]["fault_accuracy"] for r in rows]
    summary = {"fault_search_wins": f"{wins}/{len(rows)}",
               "accuracy_winners_drop_min": round(min(drops), 4),
               "fault_aware_gain": round(fat["fault_aware"]["fault_accuracy"] - fat["plain"]["fault_accuracy"], 4),
               "wall_s": round(time.perf_counter() - t0, 1)}
    print(table(rows, fat))
    print(json.dumps(summary))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"bench": "robust_faults", "data": "digits 8x8 (small data)",
                                          "settings": vars(args), "searches": rows, "fault_aware_training": fat,
                                          "summary": summary,
                                          "note": "2-core CPU shared with other jobs: times are inflated"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
