"""Benchmark: cost of a differentiable search step (DARTS, PC-DARTS, GDAS) against a plain
training step of a discrete network with the same cells, and their peak memory.

Why: a one-shot search is only practical if a step of the supernet costs a small multiple
of training one network; PC-DARTS (partial channels, K = 4) and GDAS (one sampled op per
edge) exist to cut DARTS' memory, which we expect to fall to <= 0.5x.

A *search step* is exactly what the ``differentiable`` trainer does per batch: one
first-order architecture step on a held-out batch, then one weight step on a training
batch. The *plain step* is a forward + backward + SGD step of the derived architecture
as a builders network with the same cells and channels (the trainers' ``train_pass``).
Every method runs in a fresh process, so its memory is its own: *peak memory* is the
process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs after
the model and data are built, before the first step) minus its resident set at that
moment, i.e. what the steps add (activations, gradients, optimiser state). Measured after
a warm-up step instead, it would miss them: the allocator keeps and reuses that memory. Data are synthetic (timing does not depend on
them). Run it alone on the machine (timing-sensitive):

    .venv/bin/python bench/diff_nas.py [--cells 5 --channels 16 --batch 32 --steps 3 --threads 1]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
METHODS: dict[str, dict[str, Any]] = {
    "darts": {"controller": {"type": "darts"}, "weights_manager": {"type": "diff_supernet"}},
    "pcdarts": {"controller": {"type": "darts"},
                "weights_manager": {"type": "diff_supernet", "partial_channels": 4, "edge_normalization": True}},
    "gdas": {"controller": {"type": "gdas"}, "weights_manager": {"type": "diff_supernet"}},
}


def _status(field: str) -> int:
    """A /proc/self/status size field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _config(args: argparse.Namespace, method: str) -> dict[str, Any]:
    return {"seed": 0,
            "dataset": {"type": "synthetic", "resolution": args.resolution, "channels": 3,
                        "samples": 4 * args.batch, "valid_fraction": 0.5, "test_fraction": 0.0},
            "search_space": {"type": "darts", "cells": args.cells, "channels": args.channels, "nodes": args.nodes,
                             "resolution": args.resolution, "num_classes": 10},
            "objective": {"type": "classification"},
            "trainer": {"type": "differentiable", "epochs": 1, "batch_size": args.batch},
            **METHODS.get(method, METHODS["darts"])}


def _measure(step: Any, steps: int) -> dict[str, Any]:
    import gc

    gc.collect()
    base = _status("VmRSS")  # model, data and interpreter, before any step ran
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    step()  # warm-up: the first step allocates activations, gradients and optimiser state
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times), "steps_s": times, "peak_mb": (_status("VmHWM") - base) / 2 ** 20}


def worker(method: str, args: argparse.Namespace, queue: Any) -> None:
    import torch

    from hwnas import registry
    from hwnas.config import parse_config
    from hwnas.nn.builders import build_network
    from hwnas.search.build import build_components, trainer_config
    from hwnas.search.training import make_optimizer, train_pass

    torch.set_num_threads(args.threads)
    cfg = parse_config(_config(args, method))
    comps = build_components(cfg)
    trainer = registry.get("trainer", "differentiable")(trainer_config(cfg).options, components=comps, seed=0)
    train = next(iter(comps.dataset.loader("train", batch_size=args.batch, shuffle=False)))  # type: ignore[union-attr]
    valid = next(iter(comps.dataset.loader("valid", batch_size=args.batch, shuffle=False)))  # type: ignore[union-attr]
    if method == "plain":
        model = build_network(comps.space.to_network(comps.controller.derive())).train()  # type: ignore[union-attr]
        opt = make_optimizer(model.parameters(), trainer.options)

        def step() -> None:
            train_pass(model, [train], opt, trainer.options)
        params = sum(p.numel() for p in model.parameters())
    else:
        def step() -> None:
            trainer._step(train, iter([valid]), True)
        params = sum(p.numel() for p in trainer.module.parameters())
    queue.put({"method": method, "params": params, **_measure(step, args.steps)})


def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    rows = {}
    for method in ("plain", *METHODS):
        q = ctx.Queue()
        p = ctx.Process(target=worker, args=(method, args, q))
        p.start()
        rows[method] = q.get()
        p.join()
    plain, darts = rows["plain"], rows["darts"]
    for r in rows.values():
        r["step_vs_plain"] = r["step_s"] / plain["step_s"]
        r["memory_vs_darts"] = r["peak_mb"] / darts["peak_mb"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per method (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "diff_nas.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run(args)
    from hwnas.ui import format_table

    table = [{"method": m, "params": r["params"], "step_s": round(r["step_s"], 3),
              "x_plain_step": round(r["step_vs_plain"], 2), "peak_mb": round(r["peak_mb"], 1),
              "x_darts_memory": round(r["memory_vs_darts"], 3)} for m, r in rows.items()]
    print(format_table(table))
    out = {"settings": {k: v for k, v in vars(args).items() if k != "out"},
           "step": "search: one first-order architecture step (valid batch) + one weight step (train batch), "
                   "as the differentiable trainer; plain: forward + backward + SGD step of the derived "
                   "architecture as a builders network with the same cells and channels",
           "memory": "peak resident set (VmHWM, reset via /proc/self/clear_refs after building, before the first step) minus the "
                     "resident set at that moment, each method in a fresh process",
           "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
           "wall_s": round(time.perf_counter() - t0, 1), "methods": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
