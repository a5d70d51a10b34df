"""NAS-Bench-201 latency prediction on every device column of the shared table.

Protocol (BRP-NAS / HELP): per device, train on 900 random architectures, test on all
the others (rows below 0.1 ms dropped: degenerate cells). Reports Spearman, Kendall's
tau and the share within ±10% per device and their mean. Few-shot transfer to unseen
devices has its own benchmark: ``bench/transfer.py``.

    .venv/bin/python bench/nb201_devices.py [--csv PATH] [--models mlp]

Published: BRP-NAS GCN 0.789-0.805 (900 samples).
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

    from hwnas.config import build_space
    from hwnas.cost_models.fitting import build_model
    from hwnas.cost_models.metrics import regression_metrics
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
    rows, result = [], {"train": args.train, "seed": args.seed, "devices": {}}
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
    result["table"] = rows
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
