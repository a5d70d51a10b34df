"""NAS-Bench-201 latency prediction on every device column of the shared table.

Protocol (BRP-NAS / HELP): per device, train on 900 random architectures, test on all
the others (rows below 0.1 ms dropped: degenerate cells). Reports Spearman, Kendall's
tau and the share within ±10% per device and their mean; then few-shot transfer: for
each device left out, a multi-device MLP is fit on the other devices (the same 900
architectures) and adapted from k measured networks of the new device (ridge on the
source-device outputs, HELP's hardware-embedding idea); Spearman on the rest.

    .venv/bin/python bench/nb201_devices.py [--csv PATH] [--models mlp] [--k 5,10,20,50]

Published: BRP-NAS GCN 0.789-0.805 (900 samples); HELP 0.932 (10 samples, unseen device).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CSV = str(Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "device-latency" / "nb201_latency.csv")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=CSV)
    ap.add_argument("--train", type=int, default=900)
    ap.add_argument("--models", default="mlp", help="comma list of mlp,lstm,gnn")
    ap.add_argument("--devices", default="all", help="comma list of columns, or all")
    ap.add_argument("--k", default="5,10,20,50", help="transfer shots ('' to skip transfer)")
    ap.add_argument("--transfer-devices", default="all", help="devices to leave out in turn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "nb201_devices.json"))
    args = ap.parse_args()
    if not Path(args.csv).is_file():
        print(f"skipped: no dataset at {args.csv}")
        return 0

    import numpy as np
    import pandas as pd
    import torch
    from scipy.stats import spearmanr

    from hwnas.config import build_space
    from hwnas.cost_models.fitting import build_model
    from hwnas.cost_models.metrics import regression_metrics
    from hwnas.cost_models.transfer import MultiDeviceMLP
    from hwnas.ui import format_table

    torch.set_num_threads(args.threads)
    df = pd.read_csv(args.csv)
    devices = [c for c in df.columns if c.endswith("_ms")] if args.devices == "all" else args.devices.split(",")
    sp = build_space("nb201")
    t0 = time.perf_counter()
    nets = [sp.to_network(sp.from_str(s)) for s in df["arch_str"]]
    print(f"built {len(nets)} NetworkSpecs in {time.perf_counter() - t0:.1f}s", flush=True)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(nets))
    tr, te = np.sort(perm[:args.train]), np.sort(perm[args.train:])
    rows, result = [], {"train": args.train, "seed": args.seed, "devices": {}, "transfer": {}}
    for model_name in args.models.split(","):
        for dev in devices:
            y = df[dev].to_numpy(dtype=float)
            a, b = tr[y[tr] >= 0.1], te[y[te] >= 0.1]
            t1 = time.perf_counter()
            m = build_model(model_name, args.seed).fit([nets[i] for i in a], y[a])
            r = regression_metrics(y[b], m.predict([nets[i] for i in b]))
            r["seconds"] = round(time.perf_counter() - t1, 1)
            result["devices"].setdefault(model_name, {})[dev] = r
            rows.append({"model": model_name, "device": dev, "n_test": r["n"], "spearman": round(r["spearman"], 4),
                         "tau": round(r["kendall_tau"], 4), "within_10%": round(100 * r["within_10"], 2),
                         "mape%": round(100 * r["mape"], 2), "s": r["seconds"]})
            print(rows[-1], flush=True)
        res = result["devices"][model_name]
        rows.append({"model": model_name, "device": "MEAN", "spearman": round(np.mean([v["spearman"] for v in res.values()]), 4),
                     "tau": round(np.mean([v["kendall_tau"] for v in res.values()]), 4),
                     "within_10%": round(100 * np.mean([v["within_10"] for v in res.values()]), 2),
                     "mape%": round(100 * np.mean([v["mape"] for v in res.values()]), 2)})
    print(format_table(rows))
    ks = [int(k) for k in args.k.split(",") if k]
    held = devices if args.transfer_devices == "all" else args.transfer_devices.split(",")
    trows = []
    for dev in held if ks else []:
        src = [d for d in devices if d != dev]
        Y = df[src].to_numpy(dtype=float)[tr]
        Y[Y < 0.1] = np.nan
        t1 = time.perf_counter()
        base = MultiDeviceMLP(seed=args.seed).fit([nets[i] for i in tr], Y, src)
        y = df[dev].to_numpy(dtype=float)
        pool = te[y[te] >= 0.1]
        emb_all = None
        row = {"device": dev}
        for k in ks:
            shots = np.random.default_rng(args.seed + k).choice(pool, k, replace=False)
            rest = np.setdiff1d(pool, shots)
            model = base.adapt([nets[i] for i in shots], y[shots])
            if emb_all is None:
                emb_all = dict(zip(pool.tolist(), base.embed([nets[i] for i in pool])))
            pred = np.exp(np.stack([emb_all[i] for i in rest.tolist()]) @ model.w_ + model.b_)
            row[f"k={k}"] = round(float(spearmanr(y[rest], pred).statistic), 4)
        row["s"] = round(time.perf_counter() - t1, 1)
        result["transfer"][dev] = row
        trows.append(row)
        print(row, flush=True)
    if trows:
        trows.append({"device": "MEAN", **{f"k={k}": round(np.mean([r[f"k={k}"] for r in trows]), 4) for k in ks}})
        print("few-shot transfer (Spearman on the held-out device, source model fit on the other devices)")
        print(format_table(trows))
    result["table"], result["transfer_table"] = rows, trows
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
