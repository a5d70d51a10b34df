"""Zero-cost proxies against real NAS-Bench-201 CIFAR-10 accuracy (Spearman, Kendall).

For ``--cells`` random cells (seeded), every registered zero-cost proxy objective
(``synflow``, ``jacob_cov``, ``snip``, ``grad_norm``) scores the untrained C=16, N=5
network of the ``nb201`` space; the rank correlation with the table's test accuracy is
reported over all cells and over the cells that are not cut from their input (the
341 cells scoring 10 % are trivially last for most proxies). The batch the
data-dependent proxies read is scikit-learn's digits, upsampled to 32 x 32 and repeated
to 3 channels (CIFAR-10 is not available offline; synflow reads no data). Beside the
proxies, the same cells' one-shot and few-shot supernet accuracies from the table
(Zhao et al., 2021) give the reference of a trained weight-sharing estimate.

Scores are appended to ``--scores`` as they are computed, so a killed run resumes.

    .venv/bin/python bench/zero_cost.py [--cells 1000] [--batch-size 32]

Published for synflow (Abdelfattah et al., ICLR 2021, all cells, CIFAR-10 inputs): 0.74.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
CSV = ROOT / ".." / "shared" / "datasets" / "nb201-accuracy" / "nb201_cifar10_accuracy.csv"


def proxies(space: object, batch_size: int, seed: int) -> dict[str, object]:
    """Every registered zero-cost objective, built with the digits batch."""
    from hwnas import registry
    from hwnas.config import parse_options
    from hwnas.search.datasets.builtin import DigitsDataset

    data = DigitsDataset(parse_options(DigitsDataset.Options, {"resolution": 32, "channels": 3}, "dataset"), seed=seed)
    out = {}
    for e in registry.list("objective"):
        if getattr(e.obj, "zero_cost", False):
            opts = parse_options(e.obj.Options, {"batch_size": batch_size}, e.name)
            out[e.name] = e.obj(opts, space=space, dataset=data, seed=seed)
    return out


def score_cells(cells: list[str], space: object, objs: dict[str, object], path: Path) -> dict[str, dict[str, float]]:
    """arch_str -> proxy -> score, resuming from (and appending to) the CSV at ``path``."""
    from hwnas.search.rollout import Rollout
    from hwnas.ui import progress

    done: dict[str, dict[str, float]] = {}
    if path.is_file():
        with path.open() as fh:
            for row in csv.DictReader(fh):
                done[row["arch_str"]] = {k: float(v) for k, v in row.items() if k != "arch_str"}
    names = list(objs)
    todo = [c for c in cells if c not in done or set(done[c]) != set(names)]
    new = not path.is_file() or not done
    with path.open("a" if not new else "w", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["arch_str", *names])
        for cell in progress(todo, desc="zero-cost", unit="cell"):
            r = Rollout(space.from_str(cell))  # type: ignore[attr-defined]
            done[cell] = {n: float(objs[n].perfs([r])[0][n]) for n in names}  # type: ignore[attr-defined]
            w.writerow([cell, *(done[cell][n] for n in names)])
            fh.flush()
    return done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accuracy", default=str(CSV))
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scores", default=str(RESULTS / "zero_cost_scores.csv"))
    ap.add_argument("--out", default=str(RESULTS / "zero_cost.json"))
    args = ap.parse_args()
    if not Path(args.accuracy).is_file():
        print(f"skipped: no dataset at {args.accuracy}")
        return 0

    import pandas as pd
    import torch
    from scipy.stats import kendalltau, spearmanr

    from hwnas.config import build_space
    from hwnas.ui import format_table

    torch.set_num_threads(args.threads)
    table = pd.read_csv(args.accuracy).set_index("arch_str")
    cells = list(table.index[np.random.default_rng(args.seed).choice(len(table), args.cells, replace=False)])
    space = build_space("nb201")
    objs = proxies(space, args.batch_size, args.seed)
    t0 = time.perf_counter()
    scores = score_cells(cells, space, objs, Path(args.scores))
    acc = table.loc[cells, "cifar10_test_acc"].to_numpy()
    live = acc > 10.0
    rows, res = [], {}
    columns = {n: np.array([scores[c][n] for c in cells]) for n in objs}
    columns.update({k: table.loc[cells, k].to_numpy() for k in ("oneshot_supernet_acc", "fewshot_supernet_acc")
                    if k in table.columns})
    for name, v in columns.items():
        res[name] = {"spearman": float(spearmanr(v, acc).correlation), "kendall": float(kendalltau(v, acc).correlation),
                     "spearman_connected": float(spearmanr(v[live], acc[live]).correlation)}
        rows.append({"score": name, **{k: round(x, 3) for k, x in res[name].items()}})
    print(f"{args.cells} random NAS-Bench-201 cells ({int((~live).sum())} cut from the input), batch "
          f"{args.batch_size} of digits upsampled to 32x32x3")
    print(format_table(rows))
    doc = {"benchmark": "zero_cost", "cells": args.cells, "seed": args.seed, "batch_size": args.batch_size,
           "data": "scikit-learn digits, bilinear 8x8 -> 32x32, grey repeated to 3 channels (synflow: no data)",
           "network": "nb201 space, C=16 N=5, PyTorch default init seeded per architecture",
           "published_spearman": {"synflow": 0.74},
           "results": res, "seconds_this_run": round(time.perf_counter() - t0, 1)}
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
