"""Diagnostic: where does progressive shrinking lose the order of input resolutions?

``bench/ofa_ranking.py`` found the PS+KD supernet scoring its resolution-8 subnets above its
resolution-12 ones, while training alone (and the uniform supernet) puts 12 far above 8.
This script looks for the cause on **other** subnets and another seed than the benchmark's
(so nothing is tuned to its 30 subnets): one supernet of the same space and recipe
(``supernet_evaluator`` of the benchmark, fewer steps) is trained phase by phase, and at
the end of every phase the largest network and ``n`` random architectures are each scored
at both resolutions, everything else equal (paired), BN recalibrated at that resolution,
on the valid split. Reported per phase: mean accuracy and loss at each resolution and the
paired difference r12 - r8 (positive = the order training alone gives).

    nice -n 19 .venv/bin/python bench/ofa_ps_diagnose.py [--method ps_kd] [--steps 250] [--archs 8] [--seed 1]

Small data (scikit-learn digits, 8x8 upsampled to 12); a diagnostic, not a ranking figure.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ofa_ranking import COMMON, supernet_evaluator  # noqa: E402
from ofa_scratch import Setting  # noqa: E402

from hwnas.search.datasets.builtin import DigitsDataset  # noqa: E402
from hwnas.search.rollout import Rollout  # noqa: E402
from hwnas.search.spaces.mbv3 import MBV3Space  # noqa: E402
from hwnas.ui import format_table  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def paired_archs(space: MBV3Space, n: int, seed: int) -> list[list[int]]:
    """The largest architecture, then ``n`` uniform random ones, without their resolution."""
    rng = np.random.default_rng(seed)
    largest = [d.choices.index(max(d.choices)) for d in space.decisions]
    return [largest, *[list(space.sample(rng)) for _ in range(n)]]


def score_both(ev: Any, space: MBV3Space, archs: list[list[int]]) -> dict[str, Any]:
    """Inherited accuracy and loss of every arch at each resolution (same other choices)."""
    out: dict[str, Any] = {}
    for r_index, r in enumerate(space.options.resolutions):
        rollouts = [Rollout(space.validate([r_index, *a[1:]])) for a in archs]
        ev.evaluate(rollouts)
        out[str(r)] = {"acc": [float(x.perfs["accuracy"]) for x in rollouts],
                       "loss": [float(x.perfs["loss"]) for x in rollouts]}
    return out


def one_dimension_archs(space: MBV3Space, suffix: str, n: int, seed: int) -> list[list[int]]:
    """The largest architecture, then ``n`` with only the decisions ending in ``suffix``
    drawn at random (the rest at their largest choice)."""
    rng = np.random.default_rng(seed)
    largest = [d.choices.index(max(d.choices)) for d in space.decisions]
    return [largest, *[[int(rng.integers(d.size)) if d.name.endswith(suffix) else largest[i]
                        for i, d in enumerate(space.decisions)] for _ in range(n)]]


def summary(phase: str, step: int, scores: dict[str, Any]) -> dict[str, Any]:
    """Means over the random archs (index 1..), the largest apart, and the paired gap
    largest - smallest resolution (columns named r12 / r8 as in the first setting)."""
    sizes = sorted(map(int, scores), reverse=True)
    big, small = str(sizes[0]), str(sizes[-1])
    hi, lo = (np.array(scores[r]["acc"]) for r in (big, small))
    lhi, llo = (np.array(scores[r]["loss"]) for r in (big, small))
    return {"phase": phase, "step": step, "largest_acc_r12": hi[0], "largest_acc_r8": lo[0],
            "acc_r12": float(hi[1:].mean()), "acc_r8": float(lo[1:].mean()),
            "paired_acc_diff": float((hi[1:] - lo[1:]).mean()), "share_r12_better": float((hi[1:] > lo[1:]).mean()),
            "loss_r12": float(lhi[1:].mean()), "loss_r8": float(llo[1:].mean())}


def record_grad_norms() -> list[float]:
    """Wrap torch's gradient-norm clip (what ``clip_and_step`` calls) to record each
    step's total norm before clipping: how often the bench's clip binds."""
    norms: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording(params: Any, max_norm: float, *a: Any, **kw: Any) -> torch.Tensor:
        total = clip(params, max_norm, *a, **kw)
        norms.append(float(total))
        return total

    torch.nn.utils.clip_grad_norm_ = recording  # type: ignore[assignment]
    return norms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="ps_kd", choices=("ps_kd", "ps_no_kd", "uniform"))
    ap.add_argument("--steps", type=int, default=250, help="ps optimizer steps (uniform: as many passes)")
    ap.add_argument("--archs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1, help="supernet, data order and arch seed (benchmark: 0)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    ap.add_argument("--teacher-full-size", action="store_true",
                    help="ofa_ps before the fix: each subnet draws its own resolution and the teacher gets the "
                         "full-size batch (the step draws none)")
    ap.add_argument("--gap-after-full", action="store_true",
                    help="train the full phase only, then score subnets with one dimension (kernel, depth, "
                         "expansion) random at both resolutions: how far each dimension moves a subnet from "
                         "the trained largest network at each input size")
    ap.add_argument("--resolutions", default="12,8", help="the space's input sizes (as bench/ofa_ranking.py)")
    ap.add_argument("--grad-norms", action="store_true",
                    help="record every step's gradient norm before clipping (median and share above the clip "
                         "per phase)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="an ofa_ps option to change, e.g. no_decay_bn_bias=false or phase_partial_steps=[]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    setting = Setting(tuple(int(r) for r in args.resolutions.split(",")))
    space = MBV3Space(MBV3Space.Options(**setting.space))  # type: ignore[arg-type]
    dataset = DigitsDataset(DigitsDataset.Options(**setting.data), seed=args.seed)
    norms = record_grad_norms() if args.grad_norms else None
    archs = paired_archs(space, args.archs, args.seed + 10)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    clip = float(overrides.get("grad_clip", COMMON["grad_clip"]))
    ev, total, _ = supernet_evaluator(args.method, space, dataset, args.steps, args.seed, **overrides)
    if args.teacher_full_size:
        ev._step_resolution = lambda x: (x, None)  # type: ignore[method-assign]
    ends = (list(np.cumsum(ev.options.phase_steps)) if args.method.startswith("ps")
            else [total * (i + 1) // 4 for i in range(4)])
    names = list(getattr(ev.options, "phases", ["q1", "q2", "q3", "q4"]))
    rows = []
    if args.gap_after_full:
        ev.options = replace(ev.options, steps=int(ends[0]))
        ev.update_evaluator()
        for suffix in (".k", ".depth", ".e"):
            sub = one_dimension_archs(space, suffix, args.archs, args.seed + 20)
            rows.append({**summary(f"full, random {suffix[1:]}", ev.steps_done, score_both(ev, space, sub))})
        names, ends = [], []
    for name, end in zip(names, ends):
        ev.options = replace(ev.options, steps=int(end) - ev.steps_done)
        n_before = len(norms) if norms is not None else 0
        ev.update_evaluator()
        rows.append(summary(name, ev.steps_done, score_both(ev, space, archs)))
        if norms is not None and len(norms) > n_before:  # none recorded when the clip is off
            g = np.array(norms[n_before:])
            rows[-1].update({"grad_norm_median": float(np.median(g)), "share_clipped": float((g > clip).mean())})
        print(f"{args.method}: {name} done at step {ev.steps_done} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(format_table(rows, list(rows[0])))
    out = RESULTS / f"ofa_ps_diagnose_{args.method}{args.tag}.json"
    out.write_text(json.dumps({"method": args.method, "steps": args.steps, "seed": args.seed, "archs": args.archs,
                               "resolutions": list(setting.resolutions),
                               "overrides": overrides, "teacher_full_size": args.teacher_full_size,
                               "rows": rows, "seconds": time.perf_counter() - t0,
                               "note": "small data: digits; diagnostic on random archs of seed+10, not the "
                                       "benchmark's subnets"}, indent=1, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
