"""Benchmark: does an OFA supernet rank its subnets like training them alone does?

One ``mbv3`` supernet (width 0.25, resolutions 12/8, digits) is trained twice from the
same initialisation:

* **ps_kd** - OFA's progressive shrinking (evaluator ``ofa_ps``: full -> kernel -> depth ->
  expand, channels sorted before expand, OFA's proportions of phase lengths (180, 120,
  25+120, 25+120 epochs) and peak learning rates (2.6, 0.96, 0.24, 0.24), cosine restarting
  per phase, OFA's subnets per step 1, 1, 2, 4 (``dynamic_batch_size``), elastic resolution
  in every phase, distillation from the full network frozen when its phase ends with OFA's
  ``kd_ratio`` 1 and temperature 1, label smoothing 0.1 as OFA);
* **uniform** - uniform single-path sampling over the whole space from the first step
  (evaluator ``mepa``, one cosine over all its steps, peak lr = PS's full phase, label
  smoothing 0.1), no distillation, for **the same number of sampled-subnet forward/backward
  passes** as ps_kd (so more optimizer steps: one subnet per step).

The subnets are **stratified by MACs** (decided before any tau was looked at): a pool of
uniform samples is sorted by MACs and the subnet at each of ``n`` evenly spaced quantiles
is taken, so the set spans the space from the smallest to the largest networks (a uniform
draw crowds the middle). They are scored with each supernet's inherited weights (BN
recalibrated per subnet on 1024 training images, accuracy on the held-out valid split) and
trained from scratch with one short recipe (``hwnas train``'s steps: SGD, cosine, per-epoch
seeded shuffles; the split fixed, the training seed varied) for several seeds, scored on
the same valid split. Reported: the **noise ceiling** (Kendall tau between the scratch
accuracies of two seeds, and of each seed against the mean of the others) and Kendall's
tau of each supernet's inherited accuracies against one seed and against the mean over
seeds. Small data (scikit-learn digits, 8x8 upsampled), minutes of training: a
small-budget estimate, not OFA's ImageNet figure.

    nice -n 10 .venv/bin/python bench/ofa_ranking.py [--archs 30] [--steps 500] [--epochs 6] [--seeds 0,1,2]
        [--resolutions 12,8] [--eval-splits valid] [--ps-grad-clip 5]
    (parts: --part scratch (several processes share it) and --part supernets --methods ps_kd
    / uniform; then any call reports once every part is in --work, runs/ofa_ranking)

The setting is an option, its first values the defaults (the figures of the first runs stay
reproducible): ``--resolutions`` (the digits are upsampled to the largest; 16,12 keeps the
second stage at 2x2 instead of 1x1 maps), ``--epochs`` of the scratch recipe and
``--eval-splits`` (``valid,test``: both splits are held out from every training - the
supernets', their BN recalibration's and the scratch runs' - so scoring on both halves the
evaluation noise). A setting other than the defaults is part of every cache file's name
in ``--work``, so parts of different settings never mix. ``--ps-grad-clip 0`` trains the PS
supernets without a gradient clip, as OFA does (the first runs clipped them at 5 like
uniform; with 4 subnets' and the distillation's gradients summed, that clip bound on 80% of
the expand phase's steps and on almost none of uniform's: ``bench/ofa_ps_diagnose.py
--grad-norms``). The 16/12 runs: ``--resolutions 16,12 --eval-splits valid,test --epochs 20
--steps 2000 --ps-grad-clip 0``, the scratch epochs chosen by ``bench/ofa_scratch.py``. That
reference is saturated (its ceiling tau 0.15); the capped runs add ``--max-train 300 --epochs 72
--eval-splits valid,test,rest`` (the training images above the cap scored too), chosen by
``bench/ofa_scratch.py --probe`` on other subnets before any supernet was trained at a cap.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from hwnas.config import parse_config
from hwnas.run_section import TrainOptions
from hwnas.search import final
from hwnas.search.datasets.builtin import DigitsDataset
from hwnas.search.evaluators.mepa import MepaEvaluator, score_with_recalibrated_bn
from hwnas.search.evaluators.ofa_ps import ProgressiveShrinkingEvaluator
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.search.weights.supernet_mbv3 import MBV3Supernet
from hwnas.ui import format_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench's own modules
from ofa_scratch import SCRATCH, Setting, scratch_done, train_alone  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: What both supernets share: optimiser, batch, OFA's label smoothing, scoring (whole valid
#: split, BN recalibrated on 2 x 512 training images: OFA uses 2000 of ImageNet's).
COMMON = {"batch_size": 64, "momentum": 0.9, "weight_decay": 1e-4, "grad_clip": 5.0, "label_smoothing": 0.1,
          "eval_batches": 1, "eval_batch_size": 512, "calib_batches": 2}
#: OFA's epochs per phase (full, kernel, depth 25+120, expand 25+120), peak learning rates
#: (ImageNet, 2.6 at batch 2048) and subnets per step; the partial sub-phases' epochs
#: (depth {4, 3}, expansion {6, 4}; at a third of the phase's rate, ofa_ps's default).
OFA_EPOCHS, OFA_LRS, OFA_SUBNETS = (180, 120, 145, 145), (2.6, 0.96, 0.24, 0.24), (1, 1, 2, 4)
OFA_PARTIAL_EPOCHS = (0, 0, 25, 25)
PEAK_LR = 0.05
#: The two supernets compared, then two ablations run after their results were seen; and
#: ``ps_kd_eval_teacher``: ps_kd's first run, before ofa_ps ran its frozen teacher in train
#: mode (commit 3235a40; read from the cache only, today's ofa_ps cannot redo it).
METHODS = ("ps_kd", "uniform", "ps_no_kd", "ps_kd_trained_teacher", "ps_kd_eval_teacher")
POST_HOC = ("ps_no_kd", "ps_kd_trained_teacher")


def macs_of(space: MBV3Space, arch: tuple[int, ...]) -> float:
    """Multiply-accumulates of the network, counted on its primitives (convolutions,
    an MBConv's expand, depthwise and project layers, fully connected layers; SE and
    pooling are negligible here)."""
    total = 0.0
    for p in space.to_network(arch).nodes:
        oh, ow = p.out_hw
        if p.op == "conv":
            total += oh * ow * p.c_out * p.c_in / p.groups * p.kernel ** 2
        elif p.op == "mbconv":
            mid = p.c_in * p.expansion
            total += (p.h * p.w * p.c_in * mid if p.expansion != 1 else 0.0) + oh * ow * mid * (p.kernel ** 2 + p.c_out)
        elif p.op == "fc":
            total += p.c_in * p.c_out
    return float(total)


def sample_archs(space: MBV3Space, n: int, seed: int, pool: int = 20) -> list[tuple[int, ...]]:
    """``n`` distinct architectures stratified by MACs: of ``pool * n`` distinct uniform
    samples sorted by MACs, the one at each quantile (i + 0.5) / n."""
    rng = np.random.default_rng(seed)
    cands: dict[str, tuple[int, ...]] = {}
    while len(cands) < pool * n:
        a = space.sample(rng)
        cands.setdefault(space.to_str(a), a)
    ranked = sorted(cands.values(), key=lambda a: macs_of(space, a))
    return [ranked[int((i + 0.5) / n * len(ranked))] for i in range(n)]


def supernet_evaluator(method: str, space: MBV3Space, dataset: DigitsDataset, steps: int,
                       seed: int, teacher: Path | None = None, **ps: Any) -> tuple[MepaEvaluator, int, int]:
    """The evaluator training ``method``'s supernet; its optimizer steps and subnet passes.
    ``steps`` is ps_kd's optimizer steps; uniform gets as many passes (one per step). The
    ablations (chosen after the first results): ``ps_no_kd`` (no distillation) and
    ``ps_kd_trained_teacher`` (distilling from ``teacher``, the largest subnet trained alone).
    ``ps``: ofa_ps options to change (diagnostics)."""
    wm = MBV3Supernet(space=space, seed=seed)
    split = np.floor(np.array(OFA_EPOCHS) / sum(OFA_EPOCHS) * steps).astype(int)
    split[-1] = steps - split[:-1].sum()
    passes = int(sum(s * k for s, k in zip(split, OFA_SUBNETS)))
    if method.startswith("ps"):
        recipe = {"phase_partial_steps": [int(s * p / e) for s, p, e in zip(split, OFA_PARTIAL_EPOCHS, OFA_EPOCHS)],
                  "kd_weight": 0.0 if method == "ps_no_kd" else 1.0, "kd_temperature": 1.0, **COMMON}
        opts = ProgressiveShrinkingEvaluator.Options(
            phases=["full", "kernel", "depth", "expand"], phase_steps=[int(v) for v in split],
            phase_lrs=[PEAK_LR * v / OFA_LRS[0] for v in OFA_LRS], phase_subnets=list(OFA_SUBNETS),
            teacher=teacher, steps=steps, schedule="cosine", lr=PEAK_LR, **{**recipe, **ps})
        return ProgressiveShrinkingEvaluator(opts, space=space, weights_manager=wm, dataset=dataset,
                                             seed=seed), steps, passes
    ev = MepaEvaluator(MepaEvaluator.Options(sampling="uniform", steps=passes, schedule="cosine",
                                             total_steps=passes, lr=PEAK_LR, **COMMON),
                       space=space, weights_manager=wm, dataset=dataset, seed=seed)
    return ev, passes, passes


def train_teacher(space: MBV3Space, seed: int, epochs: int, work: Path, setting: Setting) -> Path:
    """OFA's separately trained full network: the largest subnet trained alone (hwnas
    train, the scratch recipe for ``epochs`` epochs, on the training split) - a checkpoint.
    Unlike OFA's teacher it is trained at the largest resolution only; since ofa_ps feeds
    the teacher each step's resolution, its targets at resolution 8 are those of a network
    that never saw 8x8 inputs (this ablation then separates the resolutions by the
    teacher's weakness there, not by the subnets')."""
    largest = space.validate([d.choices.index(max(d.choices)) for d in space.decisions])
    config = parse_config({"seed": seed, "dataset": {"type": "digits", **setting.data},
                           "search_space": {"type": "mbv3", **setting.space}})
    opts = TrainOptions(epochs=epochs, **SCRATCH, dataset={"resolution": space.resolution_of(largest)})  # type: ignore[arg-type]
    out = work / f"teacher-epochs{epochs}-seed{seed}{setting.tag}"
    if not (out / "summary.json").is_file():
        summary = final.train(config, final.ArchFile(Path("largest.yaml"), "mbv3", list(largest)), out, options=opts)
        print(f"teacher: valid accuracy {summary['history'][-1]['valid_accuracy']:.3f}", flush=True)
    return out / final.CHECKPOINT


def score_inherited(ev: MepaEvaluator, archs: list[tuple[int, ...]], setting: Setting) -> list[float]:
    """Inherited accuracy of each arch: the evaluator's own scoring (BN recalibrated on its
    training batches, the valid split) or, with other ``eval_splits``, the same
    recalibration scored on those splits (``_fixed_batches``: the evaluator's batches)."""
    rollouts = [Rollout(a) for a in archs]
    if setting.eval_splits == ("valid",):
        ev.evaluate(rollouts)
        return [float(r.perfs["accuracy"]) for r in rollouts]
    calib, _ = ev._fixed_batches()
    held, wm = setting.held_out(ev.dataset, ev.options.eval_batch_size), ev.weights_manager
    return [score_with_recalibrated_bn(wm.assemble_candidate(r), wm.module, calib, held, ev.runtime)["accuracy"]
            for r in rollouts]


def train_supernet(method: str, space: MBV3Space, dataset: DigitsDataset, steps: int, seed: int,
                   archs: list[tuple[int, ...]], setting: Setting, ps: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one supernet in 8 rounds (mean training loss of each recorded), then the
    inherited accuracy of each of ``archs``. ``ps``: ofa_ps options of the PS supernets
    (a ``teacher`` checkpoint, ``grad_clip``)."""
    chunks = 8
    t0 = time.perf_counter()
    ev, total, passes = supernet_evaluator(method, space, dataset, steps, seed, **(ps or {}))
    curve = []
    for i in range(chunks):
        n = total * (i + 1) // chunks - total * i // chunks
        ev.options = replace(ev.options, steps=n)  # frozen options: a copy
        stats = ev.update_evaluator()
        curve.append({"step": ev.steps_done, "loss": stats.get("supernet_loss"),
                      "train_acc": stats.get("supernet_accuracy")})
        print(f"{method}: step {ev.steps_done}/{total} loss {curve[-1]['loss']:.3f}", flush=True)
    train_s = time.perf_counter() - t0
    accs = score_inherited(ev, archs, setting)
    return {"accs": {space.to_str(a): acc for a, acc in zip(archs, accs)},
            "optimizer_steps": total, "subnet_passes": passes, "loss_curve": curve, "train_seconds": train_s,
            "seconds": time.perf_counter() - t0, "load_avg_end": os.getloadavg()}


def tau(a: Any, b: Any) -> float:
    return float(kendalltau(a, b).statistic)


def noise_ceiling(scratch: np.ndarray) -> dict[str, Any]:
    """How well one from-scratch run ranks like another (``scratch``: seeds x archs)."""
    k = len(scratch)
    pairs = [tau(scratch[i], scratch[j]) for i, j in itertools.combinations(range(k), 2)]
    loo = [tau(scratch[i], np.delete(scratch, i, 0).mean(0)) for i in range(k)] if k > 2 else []
    return {"seed_pairs_tau": pairs, "mean_seed_pair_tau": float(np.mean(pairs)) if pairs else None,
            "seed_vs_mean_of_others_tau": loo, "mean_seed_vs_others_tau": float(np.mean(loo)) if loo else None,
            "per_arch_seed_std": float(scratch.std(0, ddof=1).mean()) if k > 1 else None,
            "across_arch_std_of_mean": float(scratch.mean(0).std(ddof=1))}


def ranking(inherited: np.ndarray, scratch: np.ndarray, complete: np.ndarray) -> dict[str, Any]:
    """Kendall tau of inherited accuracies against each scratch seed (over the archs it
    has) and against the mean over seeds (over the archs every used seed has)."""
    mean = scratch[:, complete].mean(0)
    each = [tau(inherited[~np.isnan(row)], row[~np.isnan(row)]) for row in scratch]
    return {"kendall_tau_vs_seed_mean": tau(inherited[complete], mean),
            "spearman_rho_vs_seed_mean": float(spearmanr(inherited[complete], mean).statistic),
            "kendall_tau_vs_each_seed": each, "archs_per_seed": [int((~np.isnan(r)).sum()) for r in scratch],
            "archs_in_seed_mean": int(complete.sum()), "mean_inherited_acc": float(np.mean(inherited))}


def report(space: MBV3Space, archs: list[tuple[int, ...]], parts: dict[str, Any], args: argparse.Namespace,
           seeds: list[int], setting: Setting) -> dict[str, Any]:
    """The noise ceiling of the scratch reference, then each finished supernet's ranking.
    With runs missing (``--partial``): the seeds with at least 5 archs, the ceiling and the
    seed mean over the archs all of them have, each seed's tau over its own archs."""
    keys = [space.to_str(a) for a in archs]
    grid = np.array([[parts["scratch"].get(f"{s}/{k}", np.nan) for k in keys] for s in seeds])
    used = [i for i, row in enumerate(grid) if (~np.isnan(row)).sum() >= 5]
    seeds, scratch = [seeds[i] for i in used], grid[used]
    complete = ~np.isnan(scratch).any(0)
    res = np.array([space.resolution_of(a) for a in archs])
    methods = {}
    for m in METHODS:
        if m in parts:
            inherited = np.array([parts[m]["accs"][k] for k in keys])
            within = {str(r): tau(inherited[complete & (res == r)], scratch[:, complete & (res == r)].mean(0))
                      for r in setting.resolutions}  # ranking inside one input size (diagnostic)
            methods[m] = {**ranking(inherited, scratch, complete), "kendall_tau_vs_seed_mean_within_resolution":
                          within, "post_hoc_ablation": m in POST_HOC, "mean_inherited_acc_by_resolution":
                          {str(r): float(inherited[res == r].mean()) for r in setting.resolutions},
                          **{k: v for k, v in parts[m].items() if k != "accs"}}
    rows = [{"arch": k, "macs": parts["macs"][k], "scratch_mean": float(np.nanmean(scratch[:, i])),
             **{f"scratch_seed{s}": float(scratch[j, i]) for j, s in enumerate(seeds)},
             **{f"{m}_acc": parts[m]["accs"][k] for m in methods}} for i, k in enumerate(keys)]
    cols = ["scratch_mean", *[f"scratch_seed{s}" for s in seeds], *[f"{m}_acc" for m in methods], "macs", "arch"]
    print(format_table(sorted(rows, key=lambda r: -r["scratch_mean"]), cols))
    ceiling = {**noise_ceiling(scratch[:, complete]), "archs": int(complete.sum()), "seeds": seeds,
               "within_resolution": {str(r): noise_ceiling(scratch[:, complete & (res == r)])
                                     for r in setting.resolutions},
               "mean_scratch_acc_by_resolution": {str(r): float(np.nanmean(scratch[:, res == r]))
                                                  for r in setting.resolutions}}
    print(f"noise ceiling over {int(complete.sum())} archs: seed-vs-seed tau {ceiling['seed_pairs_tau']}, "
          f"seed vs mean of others {ceiling['seed_vs_mean_of_others_tau']}")
    if methods:
        print(format_table([{"method": m, **v} for m, v in methods.items()],
                           ["method", "kendall_tau_vs_seed_mean", "kendall_tau_vs_each_seed", "archs_in_seed_mean",
                            "mean_inherited_acc", "optimizer_steps", "subnet_passes", "train_seconds"]))
    n_held = sum(int(len(y)) for _, y in setting.held_out(DigitsDataset(DigitsDataset.Options(**setting.data))))
    return {"archs": len(archs), "arch_sampling": "stratified by MACs (pool of 20 x n uniform samples, quantiles)",
            "supernet_steps_ps_kd": args.steps, "step_matching": "uniform: as many sampled-subnet forward/backward "
            "passes as ps_kd (one subnet per optimizer step, so more steps)", "scratch_epochs": args.epochs,
            "scratch_seeds": seeds, "scratch_recipe": SCRATCH, "seed": args.seed, "arch_sample_seed": args.seed + 1,
            "supernet_seed": args.seed if args.supernet_seed is None else args.supernet_seed,
            "noise_ceiling": ceiling, "methods": methods, "mean_scratch_acc": float(np.nanmean(scratch)),
            "complete": bool(complete.all() and len(seeds) == len(grid)),
            "space": {"type": "mbv3", **setting.space}, "dataset": {"type": "digits", **setting.data},
            "supernet_common": COMMON, "scored_on": f"{' + '.join(setting.eval_splits)} split(s) ({n_held} images, "
            "held out from all training: supernets, their BN recalibration and the scratch runs), BN recalibrated "
            "per subnet", "rows": rows,
            "note": f"small data: scikit-learn digits (8x8, upsampled to {max(setting.resolutions)}), minutes of "
                    "training on a shared 2-core CPU; a small-budget estimate, timings inflated by the load"}


def summarise(paths: list[Path]) -> dict[str, Any]:
    """Per method, the taus of several supernet seeds' reports (same setting, subnets and
    scratch reference) and their means, overall and within each resolution."""
    runs = [json.loads(p.read_text()) for p in paths]
    out: dict[str, Any] = {"files": [p.name for p in paths], "supernet_seeds": [r["supernet_seed"] for r in runs],
                           "noise_ceiling": runs[0]["noise_ceiling"], "space": runs[0]["space"],
                           "scored_on": runs[0]["scored_on"], "note": runs[0]["note"], "methods": {}}
    for m in sorted({m for r in runs for m in r["methods"]}, key=METHODS.index):
        have = [r["methods"][m] for r in runs if m in r["methods"]]
        taus = [v["kendall_tau_vs_seed_mean"] for v in have]
        within = {res: [v["kendall_tau_vs_seed_mean_within_resolution"][res] for v in have]
                  for res in have[0]["kendall_tau_vs_seed_mean_within_resolution"]}
        out["methods"][m] = {"kendall_tau_vs_seed_mean": taus, "mean": float(np.mean(taus)),
                             "within_resolution": within,
                             "within_resolution_mean": {k: float(np.mean(v)) for k, v in within.items()},
                             "mean_inherited_acc": [v["mean_inherited_acc"] for v in have],
                             "train_seconds": [v["train_seconds"] for v in have]}
    print(format_table([{"method": m, **v} for m, v in out["methods"].items()],
                       ["method", "kendall_tau_vs_seed_mean", "mean", "within_resolution_mean"]))
    return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=500, help="ps_kd's optimizer steps (uniform: as many passes)")
    ap.add_argument("--epochs", type=int, default=6, help="from-scratch training epochs per subnet")
    ap.add_argument("--seeds", default="0,1,2", help="from-scratch training seeds")
    ap.add_argument("--resolutions", default="12,8", help="the space's input sizes (digits upsampled to the largest)")
    ap.add_argument("--eval-splits", default="valid", help="held-out splits scored (valid, valid,test; "
                    "rest: the training images above --max-train)")
    ap.add_argument("--max-train", type=int, default=0, help="cap on training images, supernets' and scratch (0 = all)")
    ap.add_argument("--ps-grad-clip", type=float, default=COMMON["grad_clip"],
                    help="gradient-norm clip of the PS supernets (0 = none, OFA's recipe; the first runs: 5, as "
                         "uniform's, which binds on most expand-phase steps: 4 subnets' and KD's gradients summed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--supernet-seed", type=int, default=None,
                    help="seed of the supernets' initialisation, data order and subnet sampling (default --seed; "
                         "the split, the subnets and the scratch reference stay those of --seed)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--part", choices=("all", "supernets", "scratch", "report", "summary"), default="all")
    ap.add_argument("--summary-of", default="", help="--part summary: reports of several supernet seeds (JSON)")
    ap.add_argument("--methods", default="ps_kd,uniform", help="supernets to train in this process")
    ap.add_argument("--partial", action="store_true", help="report with from-scratch runs still missing")
    ap.add_argument("--work", default="runs/ofa_ranking", help="folder of the parts done (resumable)")
    ap.add_argument("--out", default=str(RESULTS / "ofa_ranking.json"))
    return ap.parse_args()


def supernet_files(args: argparse.Namespace, work: Path, setting: Setting) -> dict[str, Path]:
    """Each method's cache file: steps, seeds and setting in the name (and the PS runs'
    gradient clip when it is not the first runs' 5)."""
    sn_seed = args.seed if args.supernet_seed is None else args.supernet_seed
    tail = "" if sn_seed == args.seed else f"-supernet{sn_seed}"
    clip = f"-psclip{args.ps_grad_clip:g}" if args.ps_grad_clip != COMMON["grad_clip"] else ""
    return {m: work / f"supernet-{m}-steps{args.steps}-seed{args.seed}{tail}{setting.tag}"
                      f"{clip if m.startswith('ps') else ''}.json" for m in METHODS}


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    t0, load0 = time.perf_counter(), os.getloadavg()
    if args.part == "summary":
        Path(args.out).write_text(json.dumps(summarise([Path(p) for p in args.summary_of.split(",")]), indent=2))
        print(f"wrote {args.out} (small data: digits)")
        return 0
    setting = Setting(tuple(int(r) for r in args.resolutions.split(",")), tuple(args.eval_splits.split(",")),
                      args.max_train)
    space = MBV3Space(MBV3Space.Options(**setting.space))  # type: ignore[arg-type]
    dataset = DigitsDataset(DigitsDataset.Options(**setting.data), seed=args.seed)
    archs = sample_archs(space, args.archs, args.seed + 1)
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sn_seed = args.seed if args.supernet_seed is None else args.supernet_seed
    files = supernet_files(args, work, setting)
    prefix = f"scratch-strat{args.archs}-epochs{args.epochs}{setting.tag}"
    if args.part in ("all", "supernets"):
        for method in [m for m in args.methods.split(",") if m != "ps_kd_eval_teacher"]:
            ps = {"grad_clip": args.ps_grad_clip} if args.ps_grad_clip != COMMON["grad_clip"] else {}
            if method == "ps_kd_trained_teacher":
                ps["teacher"] = train_teacher(space, args.seed, 30, work, setting)
            if not files[method].is_file():
                files[method].write_text(json.dumps(train_supernet(method, space, dataset, args.steps, sn_seed,
                                                                   archs, setting, ps), indent=1))
    if args.part in ("all", "scratch"):
        print(f"from scratch: {train_alone(space, archs, args.epochs, seeds, work, prefix, setting):.0f} s here",
              flush=True)
    parts: dict[str, Any] = {m: json.loads(f.read_text()) for m, f in files.items() if f.is_file()}
    parts["scratch"] = scratch_done(work, prefix)
    parts["macs"] = {space.to_str(a): macs_of(space, a) for a in archs}
    if not args.partial and any(f"{s}/{space.to_str(a)}" not in parts["scratch"] for s in seeds for a in archs):
        print(f"from-scratch runs still missing in {work}: run --part scratch")
        return 0
    result = report(space, archs, parts, args, seeds, setting)
    result["ps_grad_clip"] = args.ps_grad_clip
    result["wall_seconds_this_call"], result["load_avg_this_call"] = time.perf_counter() - t0, [load0, os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out} (small data: digits)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
