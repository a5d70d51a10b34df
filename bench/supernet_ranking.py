"""Benchmark: does the supernet rank architectures like training them alone does?

Trains one NAS-Bench-201 supernet on scikit-learn digits with the ``mepa`` evaluator
(uniform single-path sampling), scores N sampled architectures with the shared weights
(BN recalibrated per subnet), trains each of them from scratch with ``hwnas train``'s
recipe (hwnas.search.final), and reports Kendall's tau between the two accuracies on
the validation split. The budget is deliberately small (minutes on two CPU cores), so
the tau is a small-budget estimate, not a property of the method at full scale.

    .venv/bin/python bench/supernet_ranking.py [--archs 24] [--epochs 10] [--supernet-steps 3000]
"""
from __future__ import annotations

import argparse
import json
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
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.nb201 import NB201Space
from hwnas.search.weights.supernet_nb201 import NB201Supernet
from hwnas.ui import format_table

RESULTS = Path(__file__).resolve().parent / "results"


def sample_archs(space: NB201Space, n: int, seed: int) -> list[tuple[int, ...]]:
    """Distinct archs; cells whose output ignores the input are kept out, since every
    method ranks them last and they would inflate tau."""
    rng = np.random.default_rng(seed)
    out: dict[tuple[int, ...], None] = {}
    while len(out) < n:
        a = space.sample(rng)
        if a[3] == 0 and a[4] == 0 and a[5] == 0:
            continue
        out.setdefault(a, None)
    return list(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=10, help="stand-alone training epochs per arch")
    ap.add_argument("--supernet-steps", type=int, default=3000)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=0, help="cap on training images (0 = all); a small cap "
                                                              "keeps digits from saturating every arch near 99%%")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space_opts = {"channels": args.channels, "cells_per_stage": 1, "resolution": 8, "in_channels": 1}
    data_opts = {"resolution": 8, "channels": 1, "max_train": args.max_train}
    space = NB201Space(**space_opts)
    dataset = DigitsDataset(DigitsDataset.Options(**data_opts), seed=args.seed)
    archs = sample_archs(space, args.archs, args.seed)

    t0 = time.perf_counter()
    wm = NB201Supernet(space=space, seed=args.seed)
    ev = MepaEvaluator(MepaEvaluator.Options(steps=args.supernet_steps, batch_size=64, lr=0.05, eval_batches=100,
                                             eval_batch_size=256, calib_batches=4),
                       space=space, weights_manager=wm, dataset=dataset, seed=args.seed)
    stats = ev.update_evaluator()
    rollouts = [Rollout(a) for a in archs]
    ev.evaluate(rollouts)
    t_super = time.perf_counter() - t0

    config = parse_config({"seed": args.seed, "dataset": {"type": "digits", **data_opts},
                           "search_space": {"type": "nb201", **space_opts}})
    opts = TrainOptions(epochs=args.epochs, batch_size=64, lr=0.1, label_smoothing=0.0)
    rows: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (a, r) in enumerate(zip(archs, rollouts)):
            af = final.ArchFile(Path(f"arch{i}.yaml"), "nb201", list(a))
            summary = final.train(config, af, Path(tmp) / f"a{i}", options=opts)
            rows.append({"arch": space.to_str(a), "supernet_acc": r.perfs["accuracy"],
                         "standalone_acc": summary["history"][-1]["valid_accuracy"]})
    t_alone = time.perf_counter() - t1

    s = [r["supernet_acc"] for r in rows]
    t = [r["standalone_acc"] for r in rows]
    tau = float(kendalltau(s, t).statistic)
    rho = float(spearmanr(s, t).statistic)
    print(format_table(sorted(rows, key=lambda r: -r["standalone_acc"]), ["standalone_acc", "supernet_acc", "arch"]))
    result = {"kendall_tau": tau, "spearman_rho": rho, "archs": len(rows), "supernet_steps": args.supernet_steps,
              "standalone_epochs": args.epochs, "supernet_train_loss": stats.get("supernet_loss"),
              "seconds_supernet": t_super, "seconds_standalone": t_alone, "space": {"type": "nb201", **space_opts},
              "dataset": {"type": "digits", **data_opts}, "rows": rows,
              "note": "small-budget estimate (tiny nb201 skeleton, digits at 8x8, few steps/epochs)"}
    print(f"\nKendall tau = {tau:.3f}, Spearman rho = {rho:.3f} over {len(rows)} archs "
          f"(supernet {t_super:.0f}s, stand-alone {t_alone:.0f}s; small-budget estimate)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("supernet_ranking.json" if not args.max_train else f"supernet_ranking_max{args.max_train}.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
