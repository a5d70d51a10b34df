"""Nested validation for ``bench/transfer.py``: which adaptation each left-out family gets,
decided without looking at that family.

Why: ``bench/transfer.py`` leaves one device family F out of the base and scores the
adaptations on it. Picking the adaptation by those scores would tune on the test set. Here,
for every outer family F and every other family G, a base is trained without F *and* G and
G's columns are the new device, under the same protocol as the outer run (the same seeded
split of base rows and pool, the same candidate / evaluation split per draw, planned shots
at k = ``--k``); the adaptation with the best mean Spearman over the G's is F's choice, and
``bench/transfer.py --inner THIS_JSON`` reports it as "chosen". The base without {F, G} is
also the base without {G, F}, so n families need n (n - 1) / 2 bases, cached under
``--zdir``. The inner bases may be cheaper than the outer ones (``--members``, ``--steps``:
the choice is between adaptations of one encoder's outputs, not between bases); the
output says which were used.

    .venv/bin/python bench/transfer_inner.py [--datasets fbnet] [--families F1,F2] [--members 1]
        [--steps 1000] [--k 10] [--choose-from planned,planned+ft]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as T  # noqa: E402  (bench/transfer.py: the outer protocol, reused unchanged)


def inner_pairs(fams: list[str], outer: list[str]) -> list[tuple[str, str]]:
    """The unordered pairs {F, G} with F an outer family: one base each."""
    return sorted({tuple(sorted((f, g))) for f in outer for g in fams if g != f})  # type: ignore[misc]


def run_dataset(name: str, args, cache: dict) -> dict:
    """Every pair base of ``name``, both of its families scored as the new device; then the
    per-family scores and choices."""
    from hwnas.cost_models.transfer import device_families

    nets, Y, devices, base_idx, rest = T.load_table(name, args)
    fam = device_families(devices)
    outer = args.families.split(",") if args.families else list(fam)
    unknown = sorted(set(outer) - set(fam))
    if unknown:
        raise SystemExit(f"--families: unknown {', '.join(unknown)}; families of {name}: {', '.join(fam)}")
    res = cache.setdefault(name, {})
    shard, shards = (int(v) for v in args.shard.split("/"))
    for i, (f, g) in enumerate(inner_pairs(list(fam), outer)):
        key = f"{f}+{g}"
        if key in res or i % shards != shard:
            continue
        out_cols = fam[f] + fam[g]
        *outs, secs = T.base_outputs(nets, Y, devices, out_cols, base_idx, rest, args)
        src = [c for c in devices if c not in out_cols]
        res[key] = {"base_s": secs, "devices": {d: T.one_device(tuple(outs), Y, devices, d, src, base_idx, rest, args)
                                                for d in out_cols}}
        Path(args.cache).write_text(json.dumps(cache))
        print(f"{name} base without {f},{g} [{secs}s]: " + "  ".join(
            f"{d} " + " ".join(f"{m} {_device_score(r, m, args.k[0]):.3f}" for m in args.choose_from)
            for d, r in res[key]["devices"].items()), flush=True)
    if shards > 1:
        return {"shard": args.shard, "pairs": sorted(res)}
    return summarise(res, fam, outer, args)


def _device_score(r: dict, method: str, k: int) -> float:
    return float(np.mean([s[method][str(k)] for s in r["seeds"].values()]))


def summarise(res: dict, fam: dict[str, list[str]], outer: list[str], args) -> dict:
    """Per outer family F: each method's mean over the inner families G (each the mean of its
    columns, each column averaged over draws), and the method with the best mean."""
    scores: dict[str, dict[str, float]] = {}
    per_inner: dict[str, dict[str, dict[str, float]]] = {}
    for f in outer:
        by_g = {}
        for g in fam:
            if g == f:
                continue
            r = res["+".join(sorted((f, g)))]["devices"]
            by_g[g] = {m: round(float(np.mean([_device_score(r[d], m, args.k[0]) for d in fam[g]])), 4)
                       for m in args.choose_from}
        per_inner[f] = by_g
        scores[f] = {m: round(float(np.mean([v[m] for v in by_g.values()])), 4) for m in args.choose_from}
    choice = {f: max(args.choose_from, key=lambda m, f=f: scores[f][m]) for f in outer}
    return {"scores": scores, "choice": choice, "per_inner_family": per_inner}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(T.ROOT / T.SHARED))
    ap.add_argument("--datasets", default="fbnet")
    ap.add_argument("--families", default="", help="outer families to decide for (default: all)")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--k", default="10", help="the shot count the choice is made at (one value)")
    ap.add_argument("--base-archs", type=int, default=2000)
    ap.add_argument("--encoder", choices=("mlp", "gnn"), default="gnn")
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--choose-from", default="planned,planned+ft", help="adaptations compared (bench/transfer.py names)")
    ap.add_argument("--shard", default="0/1", help="I/N: only every N-th pair base from the I-th (parallel runs)")
    ap.add_argument("--merge", default="", help="comma list of --shard runs' caches (*.partial.json) to fold in")
    ap.add_argument("--zdir", default=str(T.ROOT / "runs" / "transfer"))
    ap.add_argument("--out", default=str(T.ROOT / "bench" / "results" / "transfer_inner.json"))
    args = ap.parse_args()
    args.seeds, args.k = [int(s) for s in args.seeds.split(",")], [int(args.k)]
    args.choose_from = args.choose_from.split(",")
    args.inner, args.compare_previous = "", False
    args.cache = str(Path(args.out).with_suffix(".partial.json"))
    import torch

    torch.set_num_threads(args.threads)
    t0, load0 = time.perf_counter(), os.getloadavg()
    cache = json.loads(Path(args.cache).read_text()) if Path(args.cache).is_file() else {}
    for part in filter(None, args.merge.split(",")):  # the caches of --shard runs
        for name, res in json.loads(Path(part).read_text()).items():
            cache.setdefault(name, {}).update(res)
    result: dict = {"what": "nested validation: per outer family F, bases without F and one other family G, scored "
                            "on G (planned shots); the choice never sees F",
                    **{k: getattr(args, k) for k in ("encoder", "members", "steps", "base_archs", "seeds", "k",
                                                     "candidates", "choose_from", "split_seed")}, "datasets": {}}
    for name in args.datasets.split(","):
        result["datasets"][name] = run_dataset(name, args, cache)
        if "choice" not in result["datasets"][name]:
            continue
        for f, s in result["datasets"][name]["scores"].items():
            print(f"{name} outer {f}: " + "  ".join(f"{m} {v:.4f}" for m, v in s.items())
                  + f"  -> {result['datasets'][name]['choice'][f]}")
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["load_average"] = {"start": [round(v, 2) for v in load0], "end": [round(v, 2) for v in os.getloadavg()]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
