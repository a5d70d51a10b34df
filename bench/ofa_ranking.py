"""Benchmark: does an OFA supernet rank its subnets like training them alone does?

One ``mbv3`` supernet (width 0.25, resolutions 12/8, digits) is trained twice from the
same initialisation for the same number of optimizer steps, one subnet per step:

* **ps_kd** - OFA's progressive shrinking (evaluator ``ofa_ps``: full -> kernel -> depth ->
  expand, channels sorted before expand, OFA's proportions of phase lengths and learning
  rates, cosine restarting per phase) with distillation from the largest subnet;
* **uniform** - uniform single-path sampling over the whole space from the first step
  (evaluator ``mepa``, one cosine over all steps, peak lr = PS's full phase), no distillation.

The same 30 subnets are then scored with each supernet's inherited weights (BN
recalibrated per subnet on training batches, accuracy on the held-out valid split) and
trained from scratch with one short recipe (``hwnas train``'s, hwnas.search.final),
scored on the same valid split. The figure is Kendall's tau between inherited and
from-scratch accuracy. Small data (scikit-learn digits, 8x8 upsampled), a few minutes of
training: a small-budget estimate, not OFA's ImageNet figure.

    nice -n 10 .venv/bin/python bench/ofa_ranking.py [--archs 30] [--steps 800] [--epochs 6]
    (or the two halves at once: --part supernets and --part scratch, then either again to report;
    finished parts are cached in --work, runs/ofa_ranking: delete that folder to recompute)
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from hwnas.config import parse_config
from hwnas.run_section import TrainOptions
from hwnas.search import final
from hwnas.search.datasets.builtin import DigitsDataset
from hwnas.search.evaluators.mepa import MepaEvaluator
from hwnas.search.evaluators.ofa_ps import ProgressiveShrinkingEvaluator
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.search.weights.supernet_mbv3 import MBV3Supernet
from hwnas.ui import format_table

RESULTS = Path(__file__).resolve().parent / "results"
SPACE = {"resolutions": [12, 8], "width": 0.25, "in_channels": 1, "num_classes": 10}
DATA = {"resolution": 12, "channels": 1, "valid_fraction": 0.2, "test_fraction": 0.2}
#: What both supernets share: optimiser, batch, scoring (whole valid split, 2 calibration batches).
COMMON = {"batch_size": 64, "momentum": 0.9, "weight_decay": 1e-4, "grad_clip": 5.0, "label_smoothing": 0.0,
          "eval_batches": 1, "eval_batch_size": 512, "calib_batches": 2}


def sample_archs(space: MBV3Space, n: int, seed: int) -> list[tuple[int, ...]]:
    """``n`` distinct architectures (distinct as networks, not only as decision vectors)."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[int, ...]] = {}
    while len(out) < n:
        a = space.sample(rng)
        out.setdefault(space.to_str(a), a)
    return list(out.values())


def train_supernet(method: str, space: MBV3Space, dataset: DigitsDataset, steps: int, seed: int,
                   archs: list[tuple[int, ...]]) -> tuple[list[float], dict[str, float], float]:
    """Train one supernet by ``method`` for ``steps`` steps; inherited accuracies of ``archs``."""
    t0 = time.perf_counter()
    wm = MBV3Supernet(space=space, seed=seed)
    if method == "ps_kd":
        # OFA's proportions of epochs (full 180, kernel 120, depth 25+120, expand 25+120) and of
        # peak learning rates (2.6, 0.96, 0.24, 0.24), cosine restarting in every phase.
        split = np.floor(np.array([180, 120, 145, 145]) / 590 * steps).astype(int)
        split[-1] = steps - split[:-1].sum()
        opts = ProgressiveShrinkingEvaluator.Options(
            phases=["full", "kernel", "depth", "expand"], phase_steps=[int(v) for v in split],
            phase_lrs=[0.05, 0.05 * 0.96 / 2.6, 0.05 * 0.24 / 2.6, 0.05 * 0.24 / 2.6], subnets_per_step=1,
            kd_weight=1.0, kd_temperature=1.0, steps=steps, schedule="cosine", lr=0.05, **COMMON)
        ev: MepaEvaluator = ProgressiveShrinkingEvaluator(opts, space=space, weights_manager=wm, dataset=dataset,
                                                          seed=seed)
    else:
        ev = MepaEvaluator(MepaEvaluator.Options(sampling="uniform", steps=steps, schedule="cosine",
                                                 total_steps=steps, lr=0.05, **COMMON),
                           space=space, weights_manager=wm, dataset=dataset, seed=seed)
    stats = ev.update_evaluator()
    rollouts = [Rollout(a) for a in archs]
    ev.evaluate(rollouts)
    return [float(r.perfs["accuracy"]) for r in rollouts], stats, time.perf_counter() - t0


def scratch_done(work: Path, prefix: str) -> dict[str, float]:
    """From-scratch accuracies of every process so far (one cache file each)."""
    done: dict[str, float] = {}
    for f in sorted(work.glob(f"{prefix}*.json")):
        done.update(json.loads(f.read_text()))
    return done


def train_alone(space: MBV3Space, archs: list[tuple[int, ...]], epochs: int, seed: int, work: Path,
                prefix: str) -> float:
    """Valid accuracy of each arch trained from scratch (digits at the arch's resolution).
    Several processes may share the work: each claims an arch (an exclusive claim file)
    before training it and writes its results to a cache file of its own after each one,
    so a killed run resumes; returns the seconds spent here."""
    config = parse_config({"seed": seed, "dataset": {"type": "digits", **DATA},
                           "search_space": {"type": "mbv3", **SPACE}})
    mine = work / f"{prefix}-{os.getpid()}.json"
    own: dict[str, float] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, a in enumerate(archs):
            key = space.to_str(a)
            claim = work / "claims" / f"{prefix}-{i}"
            claim.parent.mkdir(exist_ok=True)
            if key in scratch_done(work, prefix):
                continue
            try:
                claim.open("x").close()
            except FileExistsError:
                continue  # another process trains it (remove work/claims after a kill)
            opts = TrainOptions(epochs=epochs, batch_size=64, lr=0.05, label_smoothing=0.0, weight_decay=1e-4,
                                dataset={"resolution": space.resolution_of(a)})
            af = final.ArchFile(Path(f"arch{i}.yaml"), "mbv3", list(a))
            summary = final.train(config, af, Path(tmp) / f"a{i}", options=opts)
            own[key] = float(summary["history"][-1]["valid_accuracy"])
            mine.write_text(json.dumps(own, indent=1))
            print(f"from scratch arch {i}: {own[key]:.3f}", flush=True)
    return time.perf_counter() - t0


def report(space: MBV3Space, archs: list[tuple[int, ...]], parts: dict[str, Any], args: argparse.Namespace) -> None:
    """Kendall tau of each supernet's inherited accuracies against the from-scratch ones
    (over the archs trained from scratch so far, with --partial)."""
    have = [i for i, a in enumerate(archs) if space.to_str(a) in parts["scratch"]]
    supernet_accs = {m: [parts[m]["accs"][i] for i in have] for m in ("ps_kd", "uniform")}
    scored = len(archs)
    archs = [archs[i] for i in have]
    alone = [parts["scratch"][space.to_str(a)] for a in archs]
    info = {m: {k: v for k, v in parts[m].items() if k != "accs"} for m in ("ps_kd", "uniform")}
    for m in info:
        inherited = supernet_accs[m]
        info[m]["kendall_tau"] = float(kendalltau(inherited, alone).statistic)
        info[m]["spearman_rho"] = float(spearmanr(inherited, alone).statistic)
        info[m]["mean_inherited_acc"] = float(np.mean(inherited))
    rows = [{"arch": space.to_str(a), "scratch_acc": s, "ps_kd_acc": p, "uniform_acc": u}
            for a, s, p, u in zip(archs, alone, supernet_accs["ps_kd"], supernet_accs["uniform"])]
    print(format_table(sorted(rows, key=lambda r: -r["scratch_acc"]), ["scratch_acc", "ps_kd_acc", "uniform_acc", "arch"]))
    print(format_table([{"method": m, **info[m]} for m in info],
                       ["method", "kendall_tau", "spearman_rho", "mean_inherited_acc", "seconds"]))
    result = {"archs": len(archs), "archs_scored_by_supernets": scored, "supernet_steps": args.steps, "scratch_epochs": args.epochs, "seed": args.seed,
              "arch_sample_seed": args.seed + 1, "methods": info, "mean_scratch_acc": float(np.mean(alone)),
              "space": {"type": "mbv3", **SPACE}, "dataset": {"type": "digits", **DATA},
              "scored_on": "valid split (held out from all training), BN recalibrated per subnet",
              "rows": rows, "note": "small data: scikit-learn digits (8x8, upsampled to 12), minutes of "
                                    "training; a small-budget estimate, timings under shared-CPU load"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"Kendall tau: ps_kd {info['ps_kd']['kendall_tau']:.3f}, uniform {info['uniform']['kendall_tau']:.3f} "
          f"({len(archs)} subnets, small data: digits)\nwrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=800, help="supernet optimizer steps (both methods)")
    ap.add_argument("--epochs", type=int, default=6, help="from-scratch training epochs per subnet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--part", choices=("all", "supernets", "scratch"), default="all",
                    help="compute only one part (two processes can share the work folder); the report is "
                         "written once every part is there")
    ap.add_argument("--methods", default="ps_kd,uniform", help="supernets to train in this process (--part "
                                                                  "supernets: one process per method at once)")
    ap.add_argument("--partial", action="store_true", help="report over the archs trained from scratch so far")
    ap.add_argument("--work", default="runs/ofa_ranking", help="folder of the parts done (resumable)")
    ap.add_argument("--out", default=str(RESULTS / "ofa_ranking.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = MBV3Space(MBV3Space.Options(**SPACE))  # type: ignore[arg-type]
    dataset = DigitsDataset(DigitsDataset.Options(**DATA), seed=args.seed)
    archs = sample_archs(space, args.archs, args.seed + 1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"n{args.archs}-seed{args.seed}"
    files = {m: work / f"supernet-{m}-steps{args.steps}-{tag}.json" for m in ("ps_kd", "uniform")}
    prefix = f"scratch-epochs{args.epochs}-seed{args.seed}"
    if args.part in ("all", "supernets"):
        for method in args.methods.split(","):
            if files[method].is_file():
                continue
            accs, stats, secs = train_supernet(method, space, dataset, args.steps, args.seed, archs)
            files[method].write_text(json.dumps({"accs": accs, "seconds": secs,
                                                 "final_supernet_loss": stats.get("supernet_loss")}))
            print(f"{method}: supernet trained and scored in {secs:.0f} s", flush=True)
    if args.part in ("all", "scratch"):
        secs = train_alone(space, archs, args.epochs, args.seed, work, prefix)
        print(f"from scratch: done ({secs:.0f} s in this process)", flush=True)
    parts = {k: json.loads(f.read_text()) for k, f in files.items() if f.is_file()}
    parts["scratch"] = scratch_done(work, prefix)
    missing = [a for a in archs if space.to_str(a) not in parts["scratch"]]
    if len(parts) < 3 or (missing and not (args.partial and len(missing) < len(archs) - 2)):
        print(f"parts still missing in {work}: run the other --part (or --part all)")
        return 0
    report(space, archs, parts, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
