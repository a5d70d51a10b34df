"""Few-shot transfer to an unseen device: leave-one-device-out on the NB201 and FBNet tables.

Protocol, per dataset, per device family F left out (``--protocols family``, the default:
every column of one device, e.g. 1080ti_1 and 1080ti_32 together; ``device`` is the earlier
one-column-at-a-time protocol, which keeps a left-out GPU's other batch size in the base):
  * a seeded permutation of all architectures; the first ``--base-archs`` train the
    multi-device base on the columns of the OTHER families only (nothing of F leaks into
    the base), once per left-out family; each column d of F is then a new device;
  * the rest (rows of d >= 0.1 ms) is d's pool; per draw s it is permuted, its first C rows
    (``--candidates``, at most half) are the candidates a user would pick shots from, the
    others the evaluation set — the same for every k and every method, disjoint from every
    shot set and from the base's training architectures;
  * shots: **random** (the first k candidates) or **planned** (the greedy D-optimal k of the
    candidates in the base's outputs, seed s — what ``hwnas fit-cost --transfer-from BASE
    --plan K`` writes), each adapted two ways: the robust mix of source outputs
    (:func:`hwnas.cost_models.adapt.adapt`) and the mix plus the base's last layer fine-tuned
    on the shots (``+ft``, :func:`hwnas.cost_models.adapt.refine`, strengths weighted by
    leave-one-out on the k shots only; what ``TransferModel`` does by default);
  * Spearman between d's measured latency and the prediction on the evaluation set.
Reported per method and k: mean over devices (each device averaged over draws), the worst
device, and the spread across draws (max - min per device: mean and worst over devices; and
max - min of the device mean). In the same run, the comparison baselines on the random
shots: the previous hwnas transfer (HELP-style: one MLP of the same base, member 0, and a
ridge on its outputs with the LOO-chosen strength) and, with ``--compare-previous``, the
previous robust mix (no interval fit of integer-millisecond columns, no mean-device
candidate). ``--families`` limits the left-out families (each needs its own base: minutes of
CPU), so a partial run says which families it covers.
Published reference points (their own device splits): HELP 0.932 at k=10 on NB201 and 0.910
at k=10 on FBNet; NASFLAT 0.959 at k=20 on NB201.

    .venv/bin/python bench/transfer.py [--datasets nb201,fbnet] [--seeds 0,1,2] [--k 5,10,20,50]
        [--protocols family,device] [--rows N] [--base-archs N] [--encoder mlp|gnn] [--members M] [--steps S]
        [--families 1080ti,pixel3] [--candidates C] [--compare-previous] [--inner INNER_JSON]

``--inner``: the per-family adaptation that ``bench/transfer_inner.py``'s nested validation
(bases without the left-out family and one more, scored on the other) chose, as "chosen".

Resumable: every (dataset, device) result is cached in ``--cache`` and skipped on rerun.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = "../shared/datasets/device-latency"
FILES = {"nb201": ("nb201_latency.csv", "arch_str"), "fbnet": ("fbnet_latency.csv", "ops")}
PUBLISHED = {"nb201": {"HELP k=10": 0.932, "NASFLAT k=20": 0.959}, "fbnet": {"HELP k=10": 0.910}}
ALPHAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


def ridge_loo(Z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    """The previous hwnas adaptation (baseline): ridge on centred outputs, alpha by LOO."""
    zm, tm = Z.mean(0), t.mean()
    Zc, tc = Z - zm, t - tm
    best = None
    for a in ALPHAS:
        A = Zc.T @ Zc + a * np.eye(Z.shape[1])
        w = np.linalg.solve(A, Zc.T @ tc)
        H = Zc @ np.linalg.solve(A, Zc.T) + 1.0 / len(t)
        score = float(np.mean(((tc - Zc @ w) / np.maximum(1.0 - np.diag(H), 1e-6)) ** 2))
        if best is None or score < best[0]:
            best = (score, w)
    assert best is not None
    return best[1], float(tm - zm @ best[1])


def leave_out_sets(devices: list[str], protocol: str) -> list[tuple[list[str], list[str]]]:
    """(columns the base does not see, columns evaluated as the new device) per base.

    ``family`` (default): every column of a hardware family at once (all batch sizes of a
    GPU), so the base has seen nothing of the device it is evaluated on. ``device``: the
    earlier protocol, one column at a time, which keeps sibling columns (1080ti_32 while
    1080ti_1 is "unseen") in the base and so flatters the figure.
    """
    from hwnas.cost_models.transfer import device_families

    if protocol == "device":
        return [([d], [d]) for d in devices]
    return [(cols, cols) for cols in device_families(devices).values()]


def base_outputs(nets, Y, devices, out_cols, base_idx, rest, args) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The base (trained on the columns not in ``out_cols``) on every row of ``rest``: its
    member-averaged outputs Z, member 0's outputs Z0 and the hidden features H of the
    last layer (:meth:`MultiDeviceModel.embed_hidden`); cached per left-out set under
    ``--zdir``, so the protocols, the methods and reruns share the bases they have in common."""
    from hwnas.cost_models.transfer import FitSchedule, MultiDeviceModel

    tag = "+".join(sorted(c.removesuffix("_ms") for c in out_cols))
    zfile = Path(args.zdir) / f"{args.dataset}_{args.encoder}_{args.base_archs}_{args.members}_{args.steps}_{tag}.npz"
    if zfile.is_file():
        z = np.load(zfile)
        if "H" in z:
            return z["Z"], z["Z0"], z["H"], float(z["base_s"])
    t0 = time.perf_counter()
    keep = [j for j, c in enumerate(devices) if c not in out_cols]
    Ysrc = Y[:, keep][base_idx]
    base = MultiDeviceModel(encoder=args.encoder, members=args.members, schedule=FitSchedule(steps=args.steps),
                            seed=args.split_seed).fit([nets[i] for i in base_idx],
                                                      np.where(Ysrc >= 0.1, Ysrc, np.nan),
                                                      devices=[devices[j] for j in keep])
    assert not set(out_cols) & set(base.devices_)
    Z, H = base.embed_hidden([nets[i] for i in rest])
    Z0 = base.embed([nets[i] for i in rest], members=[0])
    secs = round(time.perf_counter() - t0, 1)
    zfile.parent.mkdir(parents=True, exist_ok=True)
    np.savez(zfile, Z=Z, Z0=Z0, H=H.astype(np.float32), base_s=secs)
    return Z, Z0, H.astype(np.float32).astype(np.float64), secs


#: Adaptations compared: the robust mix (:func:`adapt`) alone, and the mix with the base's
#: last layer fine-tuned on the shots (:func:`refine`); per shot choice (random, planned).
METHODS = ("random", "planned", "random+ft", "planned+ft")


def _methods(args) -> tuple[str, ...]:
    return (("chosen",) if args.inner else ()) + METHODS + (
        ("previous", "baseline") if args.compare_previous else ("baseline",))


def apply_choice(res: dict, devices: list[str], choice: dict[str, str]) -> None:
    """Add "chosen": per left-out family, the planned-shot adaptation that the family's inner
    validation (``bench/transfer_inner.py``: bases without it AND one other training family,
    scored on that other family) picked — decided without the left-out family's figures."""
    from hwnas.cost_models.transfer import device_families

    for fam, cols in device_families(devices).items():
        for d in cols:
            if fam in choice and d in res:
                res[d]["chosen"] = choice[fam]
                for r in res[d]["seeds"].values():
                    r["chosen"] = r[choice[fam]]


def adapt_predict(Z: np.ndarray, H: np.ndarray, t: np.ndarray, src: list[str], ev: np.ndarray,
                  shots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-latency predictions of the rows ``ev`` from the shots: (mix only, mix + fine-tuned
    last layer), the two adaptations a transfer model offers (``TransferModel(refine=...)``)."""
    from hwnas.cost_models.adapt import adapt, loo_predictions, refine

    a = adapt(Z[shots], t, src)
    mix = a.predict_log(Z[ev])
    rf = refine(H[shots], t, loo_predictions(Z[shots], t, src))
    return mix, mix + rf.predict_log(H[ev])


def one_device(outs: tuple[np.ndarray, np.ndarray, np.ndarray], Y, devices, d, src, base_idx, rest, args) -> dict:
    """Every draw's shots of device ``d`` adapted on the base's outputs ``outs`` = (Z, Z0, H),
    rows of ``rest``.

    Per draw s the pool is permuted; its first C rows are the candidates a user would have
    (``--candidates``), the others the evaluation set, shared by every method. Random shots:
    the first k candidates. Planned shots: the greedy D-optimal k of the candidates in the
    base's outputs (:func:`hwnas.cost_models.plan.d_optimal`, seed s), which is what
    ``hwnas fit-cost --transfer-from BASE --plan K`` writes."""
    from scipy.stats import spearmanr

    from hwnas.cost_models.adapt import adapt
    from hwnas.cost_models.plan import d_optimal

    Z, Z0, H = outs
    y = Y[:, devices.index(d)]
    keep = np.flatnonzero(y[rest] >= 0.1)  # positions in rest (and in Z)
    pool = rest[keep]
    Z, Z0, H = Z[keep], Z0[keep], H[keep]  # rows of pool from here on
    n_cand = min(args.candidates, len(pool) // 2)
    out: dict = {"seeds": {}, "n_candidates": n_cand}
    for seed in args.seeds:
        order = np.random.default_rng(10_000 + seed).permutation(len(pool))
        cand, ev = order[:n_cand], order[n_cand:]
        planned = cand[d_optimal(Z[cand], max(args.k), seed=seed)[0]]
        r: dict = {m: {} for m in _methods(args)}
        r["n_eval"] = int(len(ev))
        rho = lambda pred: float(spearmanr(y[pool[ev]], pred).statistic)  # noqa: E731
        for k in args.k:
            for method, idx in (("random", cand[:k]), ("planned", planned[:k])):
                assert not set(idx.tolist()) & set(ev.tolist())
                assert not set(pool[idx].tolist()) & set(base_idx.tolist())
                mix, ft = adapt_predict(Z, H, np.log(y[pool[idx]]), src, ev, idx)
                r[method][str(k)], r[f"{method}+ft"][str(k)] = rho(mix), rho(ft)
            t = np.log(y[pool[cand[:k]]])
            if args.compare_previous:
                r["previous"][str(k)] = rho(adapt(Z[cand[:k]], t, src, step=0.0, shrink_mean=False).predict_log(Z[ev]))
            w, b = ridge_loo(Z0[cand[:k]], t)
            r["baseline"][str(k)] = rho(Z0[ev] @ w + b)
        out["seeds"][str(seed)] = r
    return out


def summarise(res: dict, devices: list[str], ks: list[int], methods: tuple[str, ...]) -> dict:
    """Per method and k: the mean over devices (each averaged over draws), the worst device,
    and the spread across draws — per device (max - min and std over its draws; the mean and
    the worst over devices) and of the device mean itself (max - min over draws)."""
    out: dict = {}
    for method in methods:
        for k in ks:
            draws = {d: np.array([r[method][str(k)] for r in res[d]["seeds"].values() if method in r])
                     for d in devices if res.get(d)}
            draws = {d: v for d, v in draws.items() if len(v)}
            if not draws:
                continue
            per_dev = {d: float(v.mean()) for d, v in draws.items()}
            spread = {d: float(np.ptp(v)) for d, v in draws.items()}
            worst = min(per_dev, key=per_dev.get)
            n = min(len(v) for v in draws.values())
            by_draw = np.mean([v[:n] for v in draws.values()], axis=0)
            out.setdefault(method, {})[f"k={k}"] = {
                "mean": round(float(np.mean(list(per_dev.values()))), 4), "worst": round(per_dev[worst], 4),
                "worst_device": worst, "spread_mean": round(float(np.mean(list(spread.values()))), 4),
                "spread_worst": round(max(spread.values()), 4),
                "std_mean": round(float(np.mean([v.std() for v in draws.values()])), 4),
                "spread_of_mean": round(float(np.ptp(by_draw)), 4), "draws": n,
                "per_device": {d: round(v, 4) for d, v in per_dev.items()},
                "per_device_spread": {d: round(v, 4) for d, v in spread.items()}}
    return out


def load_table(name: str, args) -> tuple[list, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """The networks, the (rows, devices) latencies, the device columns, and the seeded split
    into the base's training rows and the rest (pools of shots and evaluation)."""
    import pandas as pd

    from hwnas.config import build_space

    fname, col = FILES[name]
    df = pd.read_csv(Path(args.shared) / fname)
    if args.rows:
        df = df.sample(n=min(args.rows, len(df)), random_state=args.split_seed).reset_index(drop=True)
    devices = [c for c in df.columns if c.endswith("_ms")]
    sp = build_space(name)
    nets = [sp.to_network(sp.from_str(s)) for s in df[col].astype(str)]
    args.dataset = name
    perm = np.random.default_rng(args.split_seed).permutation(len(nets))
    return nets, df[devices].to_numpy(dtype=float), devices, perm[:args.base_archs], perm[args.base_archs:]


def run_dataset(name: str, args, cache: dict) -> dict:
    nets, Y, devices, base_idx, rest = load_table(name, args)
    wanted = set(args.devices.split(",")) if args.devices else set(devices)
    if args.families:
        from hwnas.cost_models.transfer import device_families

        fam = device_families(devices)
        unknown = sorted(set(args.families.split(",")) - set(fam))
        if unknown:
            raise SystemExit(f"--families: unknown {', '.join(unknown)}; families of {name}: {', '.join(fam)}")
        wanted &= {c for f in args.families.split(",") for c in fam[f]}
    out: dict = {"devices": devices, "base_archs": args.base_archs, "rows": len(nets), "published": PUBLISHED[name]}
    for protocol in args.protocols:
        res = cache.setdefault(name, {}).setdefault(protocol, {})
        for out_cols, evaluated in leave_out_sets(devices, protocol):
            todo = [d for d in evaluated if d in wanted and not (
                d in res and all(str(seed) in res[d]["seeds"] for seed in args.seeds))]
            if not todo:
                continue
            *outs, secs = base_outputs(nets, Y, devices, out_cols, base_idx, rest, args)
            src = [c for c in devices if c not in out_cols]
            for d in todo:
                r = res[d] = {"left_out": out_cols, "base_s": secs,
                              **one_device(tuple(outs), Y, devices, d, src, base_idx, rest, args)}
                Path(args.cache).write_text(json.dumps(cache))
                runs = list(r["seeds"].values())
                print(f"{name} [{protocol}] {d} (base without {','.join(out_cols)}): " + "  ".join(
                    f"k={k} planned {np.mean([v['planned'][str(k)] for v in runs]):.3f} +ft "
                    f"{np.mean([v['planned+ft'][str(k)] for v in runs]):.3f} random "
                    f"{np.mean([v['random'][str(k)] for v in runs]):.3f} (baseline "
                    f"{np.mean([v['baseline'][str(k)] for v in runs]):.3f})" for k in args.k)
                    + f"  [{secs}s]", flush=True)
        if args.inner and protocol == "family":
            apply_choice(res, devices, json.loads(Path(args.inner).read_text())["datasets"].get(name, {}).get("choice", {}))
        out[protocol] = {"runs": res, "summary": summarise(res, devices, args.k, _methods(args))}
    return out


def table_rows(name: str, r: dict, args) -> list[dict]:
    """The printed table's rows of one dataset: per protocol and method, the mean per k and,
    at k = 10, the worst device and the spreads across draws."""
    labels = {"chosen": "planned shots + adaptation chosen by inner validation", "planned": "planned shots (D-optimal) + robust mix", "random": "random shots + robust mix",
              "planned+ft": "planned shots + mix + fine-tuned last layer",
              "random+ft": "random shots + mix + fine-tuned last layer",
              "previous": "random shots + previous mix (no tie/noise handling)",
              "baseline": "random shots, 1 MLP + ridge (HELP-style)"}
    rows = []
    for protocol in args.protocols:
        for method in _methods(args):
            s = r[protocol]["summary"].get(method)
            if not s:
                continue
            rows.append({"dataset": name, "leave out": protocol, "method": labels[method],
                         **{f"k={k}": s[f"k={k}"]["mean"] for k in args.k},
                         **{f"{what} k={k}": s[f"k={k}"][key] for k in (10,) if k in args.k
                            for what, key in (("worst", "worst"), ("spread", "spread_mean"),
                                              ("spread max", "spread_worst"), ("spread of mean", "spread_of_mean"))}})
    return rows


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT / SHARED), help="folder of the latency CSVs (default: %(default)s)")
    ap.add_argument("--datasets", default="nb201,fbnet")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="shot draws per device (default: %(default)s)")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the base / pool split and the base")
    ap.add_argument("--k", default="5,10,20,50")
    ap.add_argument("--base-archs", type=int, default=4000, help="architectures the base is trained on")
    ap.add_argument("--encoder", choices=("mlp", "gnn"), default="mlp", help="encoder of the base")
    ap.add_argument("--members", type=int, default=3, help="ensemble members of the base")
    ap.add_argument("--steps", type=int, default=3000, help="optimizer steps per member")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--protocols", default="family",
                    help="family (leave out every column of a device: all batch sizes of a GPU), device (one "
                         "column at a time, siblings stay in the base), or both: family,device (default: %(default)s)")
    ap.add_argument("--rows", type=int, default=0, help="use a seeded sample of this many table rows (0: all)")
    ap.add_argument("--devices", default="", help="left-out devices to run (comma list; default all): split the "
                                                  "work over processes with separate --cache files, then merge")
    ap.add_argument("--families", default="", help="left-out families to run (comma list of device_families "
                                                   "names, e.g. 1080ti,pixel3; default all): limits the bases trained")
    ap.add_argument("--candidates", type=int, default=1000,
                    help="candidates per draw that shots are picked from (at most half the pool; the rest is the "
                         "evaluation set) (default: %(default)s)")
    ap.add_argument("--compare-previous", action="store_true",
                    help="also the previous adaptation (no quantisation handling, no noise floor) on the random shots")
    ap.add_argument("--merge", default="", help="comma list of other runs' --cache files (the same settings, other "
                                                "--families) to fold into this run's results first")
    ap.add_argument("--inner", default="", help="a bench/transfer_inner.py result: adds the per-family adaptation "
                                                "its nested validation chose (family protocol)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "transfer.json"))
    ap.add_argument("--cache", default=None, help="resume file (default: OUT with .partial.json)")
    ap.add_argument("--zdir", default=str(ROOT / "build" / "transfer-bench"),
                    help="where the bases' outputs are kept, so a rerun only re-adapts (default: %(default)s)")
    args = ap.parse_args()
    args.seeds, args.k = [int(s) for s in args.seeds.split(",")], [int(k) for k in args.k.split(",")]
    args.protocols = [p for p in args.protocols.split(",") if p]
    if not set(args.protocols) <= {"family", "device"}:
        ap.error(f"--protocols: expected family and/or device, got {','.join(args.protocols)}")
    args.cache = args.cache or str(Path(args.out).with_suffix(".partial.json"))
    return args


def main() -> int:
    args = parse_args()
    t0, load0 = time.perf_counter(), os.getloadavg()
    missing = [FILES[n][0] for n in args.datasets.split(",") if not (Path(args.shared) / FILES[n][0]).is_file()]
    if missing:
        print(f"skipped: {', '.join(missing)} not in {args.shared}")
        return 0
    import torch

    from hwnas.ui import format_table

    torch.set_num_threads(args.threads)
    cache = json.loads(Path(args.cache).read_text()) if Path(args.cache).is_file() else {}
    for part in filter(None, args.merge.split(",")):  # other processes' caches (--families split)
        for name, by_protocol in json.loads(Path(part).read_text()).items():
            for protocol, res in by_protocol.items():
                cache.setdefault(name, {}).setdefault(protocol, {}).update(res)
    result = {"protocols": {"family": "leave one device family out (every batch-size column of it); base on the "
                                      "other families only; shots and evaluation disjoint",
                            "device": "leave one column out; sibling columns of the same device stay in the base"},
              "rows": args.rows or "all", "base_archs": args.base_archs, "seeds": args.seeds, "k": args.k, "encoder": args.encoder, "members": args.members, "steps": args.steps,
              "candidates": args.candidates, "families": args.families or "all", "split_seed": args.split_seed,
              "inner": args.inner or None, "datasets": {}}
    rows = []
    for name in args.datasets.split(","):
        result["datasets"][name] = run_dataset(name, args, cache)
        rows += table_rows(name, result["datasets"][name], args)
    print("mean Spearman over unseen devices (each device averaged over draws); spread: max - min over draws "
          "(per device: mean and worst over devices; and of the device mean)")
    print(format_table(rows))
    result["wall_s"] = round(time.perf_counter() - t0, 1)  # bases read from --zdir cost nothing here: see base_s
    result["load_average"] = {"start": [round(v, 2) for v in load0], "end": [round(v, 2) for v in os.getloadavg()]}
    print(f"wall {result['wall_s']} s, load average {result['load_average']} (a shared 2-core machine: timings "
          "are inflated by other work)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
