"""Adversarial training vs standard training under PGD-10 (SMALL DATA: digits).

One fixed architecture of a small NAS-Bench-201 space is trained three ways on
scikit-learn's digits (8x8, grey) by the ``tune`` evaluator — plainly, with PGD
adversarial training (``robust: {method: pgd}``, PGD-7, Madry et al.) and with fast
FGSM from a random start (``robust: {method: fgsm}``, Wong et al.) — and each is scored
on the held-out **test** split: clean accuracy and robust accuracy under a white-box
PGD-10 L-infinity attack (``--restarts`` random restarts) of radius ``--eps`` in pixel
units (pixels in [0, 1]; the attack works in the normalised inputs the network sees,
so eps and the [0, 1] pixel bounds are divided by the training split's std).

    .venv/bin/python bench/robust_adv.py [--eps 0.2] [--epochs 6]

Writes bench/results/robust_adv.json. Timings on a shared 2-core machine are inflated.
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


def pixel_units(seed: int) -> tuple[float, float]:
    """(mean, std) of the digits training split the tune evaluator normalises by."""
    from hwnas.config import parse_options
    from hwnas.search.datasets.builtin import DigitsDataset

    data = DigitsDataset(parse_options(DigitsDataset.Options, {"resolution": 8, "channels": 1}, "dataset"), seed=seed)
    data.prepare()
    return float(data.mean.ravel()[0]), float(data.std.ravel()[0])  # type: ignore[union-attr]


def config(args: argparse.Namespace, attack: dict[str, Any], robust: dict[str, Any] | None) -> dict[str, Any]:
    tune: dict[str, Any] = {"type": "tune", "epochs": args.epochs, "batch_size": 64, "lr": 0.05, "threads": 1}
    if robust:
        tune["robust"] = robust
    return {"seed": args.seed,
            "dataset": {"type": "digits", "resolution": 8, "channels": 1},
            "search_space": {"type": "nb201", "channels": args.channels, "cells_per_stage": 1, "resolution": 8,
                             "in_channels": 1, "num_classes": 10},
            "weights_manager": {"type": "plain"},
            "evaluator": tune,
            "objective": {"type": "composite", "objectives": [
                {"type": "classification", "split": "test"},
                {"type": "adversarial", "split": "test", "attack": attack, "seed": 1}]}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eps", type=float, default=0.2, help="L-inf radius in pixel units (pixels in [0, 1])")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restarts", type=int, default=2, help="restarts of the PGD-10 evaluation attack")
    ap.add_argument("--arch", default="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                      "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    ap.add_argument("--out", default=str(RESULTS / "robust_adv.json"))
    args = ap.parse_args()
    from hwnas.search.api import evaluate_archs

    mean, std = pixel_units(args.seed)
    eps = args.eps / std
    bounds = [(0.0 - mean) / std, (1.0 - mean) / std]
    attack = {"method": "pgd", "norm": "linf", "eps": eps, "steps": 10, "restarts": args.restarts, "bounds": bounds}
    train_attack = {"norm": "linf", "eps": eps, "steps": 7, "bounds": bounds}
    variants = {"standard": None,
                "pgd7_adversarial": {"method": "pgd", "attack": train_attack},
                "fast_fgsm_adversarial": {"method": "fgsm", "attack": train_attack}}
    rows: dict[str, Any] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, robust in variants.items():
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config(args, attack, robust), sort_keys=False))
            t0 = time.perf_counter()
            (row,) = evaluate_archs(path, [args.arch], device="cpu")
            rows[name] = {"clean_accuracy": row["accuracy"], "pgd10_robust_accuracy": row["robust_accuracy"],
                          "wall_s": round(time.perf_counter() - t0, 1)}
            print(f"{name}: {rows[name]}", flush=True)
    print(f"\narch {args.arch}, digits 8x8 (small data), PGD-10 L-inf eps {args.eps} px "
          f"({eps:.3f} normalised), {args.restarts} restart(s), test split")
    print("training               clean_acc  pgd10_robust_acc  wall_s")
    print("---------------------  ---------  ----------------  ------")
    for name, r in rows.items():
        print(f"{name:<21}  {r['clean_accuracy']:9.4f}  {r['pgd10_robust_accuracy']:16.4f}  {r['wall_s']:6.1f}")
    out = {"bench": "robust_adv", "data": "digits 8x8 (small data)", "settings": vars(args),
           "attack": attack, "train_attack": train_attack, "results": rows,
           "wall_s": round(time.perf_counter() - t_all, 1),
           "note": "2-core CPU shared with other jobs: times are inflated"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
