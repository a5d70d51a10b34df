"""Benchmark: the recurrent-cell search flow on a small text corpus, from nothing, on a CPU.

Why: a user must be able to check the whole language-model toolchain on a laptop before
renting GPUs for PTB. For each config (default: the DARTS and ENAS CPU siblings) it runs
the search (``hwnas search``: DARTS' differentiable search, or ENAS' REINFORCE controller
over a shared model), derives the cell, trains it from scratch by the config's recipe
(the ``language`` objective's ``final``: SGD with clipping, NT-ASGD) and tests it. The
baseline, computed in the same run on the same vocabulary and test split, is the
unigram model of the training split with add-one (Laplace) smoothing.

The corpus is the small public-domain one in tests/data/shakespeare_ptb (40k training
tokens of Shakespeare; **small data, not PTB**): figures show the flow works end to end,
not what the cell would reach on PTB. Torch runs on one thread (``--threads``): the
small matrix products of a recurrent cell slow down by an order of magnitude when
several threads contend for a busy 2-core machine.

    .venv/bin/python bench/language_flow.py [--config configs/darts-rnn-ptb-cpu.yaml ...]

Writes bench/results/language_flow.json; run folders under --work.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = ["configs/darts-rnn-ptb-cpu.yaml", "configs/enas-rnn-ptb-cpu.yaml"]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_flow(config: Path, work: Path) -> dict[str, Any]:
    """search -> derive -> train -> test for one config; times per phase (wall and CPU)."""
    from hwnas.search.api import run_search
    from hwnas.search.language.flow import train_and_test

    run_dir, final_dir = work / f"{config.stem}-search", work / f"{config.stem}-final"
    for d in (run_dir, final_dir):
        shutil.rmtree(d, ignore_errors=True)
    t0, c0 = time.perf_counter(), cpu_seconds()
    summary = run_search(config, run_dir=run_dir, restart=True)
    t1, c1 = time.perf_counter(), cpu_seconds()
    arch = summary["best"]["arch_str"]  # derive: the differentiable trainer's derivation / the best rollout
    res = train_and_test(config, arch, final_dir,
                         on_epoch=lambda r: print(f"  epoch {r['epoch']}: train {r['train_loss']:.3f} "
                                                  f"valid ppl {r['valid_ppl']:.1f} asgd {int(r['asgd'])}", flush=True))
    t2, c2 = time.perf_counter(), cpu_seconds()
    return {"config": str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
            "searched_cell": arch, "search_perfs": summary["best"].get("perfs", {}),
            "search_steps": summary.get("steps"), "search_wall_s": round(t1 - t0, 1),
            "search_cpu_s": round(c1 - c0, 1), "train_test_wall_s": round(t2 - t1, 1),
            "train_test_cpu_s": round(c2 - c1, 1), "total_wall_s": round(t2 - t0, 1),
            **{k: v for k, v in res.items() if k != "arch"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", help=f"run config(s) (default: {', '.join(CONFIGS)})")
    ap.add_argument("--work", default=str(ROOT / "runs" / "language_flow"), help="folder for the run folders")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", default=str(RESULTS / "language_flow.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    configs = [Path(c) if Path(c).is_absolute() else ROOT / c for c in (args.config or CONFIGS)]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for cfg in configs:
        print(f"== {cfg.name}", flush=True)
        rows.append(one_flow(cfg, work))
    head = ("config", "cell", "valid_ppl", "test_ppl", "unigram_test_ppl", "test_oov", "search_s", "train_test_s",
            "total_s")
    print("\nsmall data (tests/data/shakespeare_ptb, public-domain Shakespeare, 40k training tokens), "
          f"torch threads {args.threads}; wall seconds on this machine (shared: inflated under load)")
    print("  ".join(head))
    for r in rows:
        print("  ".join(str(v) for v in (Path(r["config"]).stem, r["searched_cell"], round(r["valid_ppl"], 1),
                                          round(r["test_ppl"], 1), round(r["test_unigram_ppl"], 1),
                                          r["test_oov_tokens"], r["search_wall_s"], r["train_test_wall_s"],
                                          r["total_wall_s"])))
    out = {"data": "tests/data/shakespeare_ptb (small public-domain corpus, not PTB)",
           "baseline": "unigram model of the training split, add-one (Laplace) smoothing, same vocabulary",
           "threads": args.threads, "runs": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
