"""Benchmark: one training step of a sampled subnet through the supernet vs the same
architecture as a plain PyTorch module (the profilers' builders network).

Why: weight sharing is only worth it if training a subnet through the supernet costs
about what training the subnet alone costs (goal <= 1.15x). Each architecture is
timed both ways, interleaved, and the median per-step time is reported.

    .venv/bin/python bench/supernet_step.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.nb201 import NB201Space
from hwnas.search.weights.supernet_mbv2 import MBV2Supernet
from hwnas.search.weights.supernet_nb201 import NB201Supernet
from hwnas.ui import format_table

RESULTS = Path(__file__).resolve().parent / "results"


def _step_fn(model: torch.nn.Module, params: Any, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _time(fn: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_space(name: str, space: Any, wm: Any, archs: int, steps: int, batch: int) -> list[dict[str, Any]]:
    so = space.options
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, so.in_channels, so.resolution, so.resolution, generator=g)
    y = torch.randint(0, so.num_classes, (batch,), generator=g)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(archs):
        arch = space.sample(rng)
        # Supernet step: assemble the candidate each step, as a search does.
        wm.module.train()
        opt_super = torch.optim.SGD(wm.module.parameters(), lr=0.01, momentum=0.9)

        def super_step() -> None:
            cand = wm.assemble_candidate(Rollout(arch))
            opt_super.zero_grad(set_to_none=True)
            F.cross_entropy(cand(x), y).backward()
            opt_super.step()

        plain = wm.export_subnet(arch).train()
        plain_step = _step_fn(plain, plain.parameters(), x, y)
        super_step(), plain_step(), super_step(), plain_step()  # warm-up
        s_ms, p_ms = [], []
        for _ in range(3):  # interleave so drift from other load hits both alike
            s_ms += _time(super_step, steps)
            p_ms += _time(plain_step, steps)
        s, p = statistics.median(s_ms), statistics.median(p_ms)
        rows.append({"space": name, "arch": i, "supernet_ms": s, "plain_ms": p, "ratio": s / p})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer archs and steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    archs, steps = (2, 3) if args.quick else (5, 5)
    mbv2 = MBV2Space(resolution=32, width=1.0, num_classes=10, in_channels=3)
    nb201 = NB201Space(channels=16, cells_per_stage=5, resolution=32, in_channels=3, num_classes=10)
    rows = bench_space("mbv2 r32 w1.0", mbv2, MBV2Supernet(space=mbv2), archs, steps, args.batch)
    rows += bench_space("nb201 C16 N5", nb201, NB201Supernet(space=nb201), archs, steps, args.batch)
    summary = []
    for name in dict.fromkeys(r["space"] for r in rows):
        rs = [r for r in rows if r["space"] == name]
        summary.append({"space": name, "archs": len(rs), "supernet_ms": statistics.median(r["supernet_ms"] for r in rs),
                        "plain_ms": statistics.median(r["plain_ms"] for r in rs),
                        "median_ratio": statistics.median(r["ratio"] for r in rs),
                        "max_ratio": max(r["ratio"] for r in rs), "goal": 1.15})
    print(format_table(rows))
    print()
    print(format_table(summary))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "supernet_step.json"
    out.write_text(json.dumps({"rows": rows, "summary": summary, "batch": args.batch, "threads": args.threads,
                               "torch": torch.__version__, "machine": platform.processor() or platform.machine()},
                              indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
