"""Batch prediction speed of every cost model: predictions per second on 10,000 networks.

Goals: >= 50k/s for lut/linear/mlp and >= 5k/s for lstm/gnn on 2 cores. Networks are
synthetic MobileNetV2 (224 px) candidates, as a search would submit them; each model is
fit on 300 of them first (few steps: speed, not accuracy, is measured here). The first
call after fitting and a repeat call are both timed (the repeat shows the warm cache).

    .venv/bin/python bench/predict_speed.py [--n 10000] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOALS = {"lut": 50_000, "linear1": 50_000, "linear2": 50_000, "mlp": 50_000, "lstm": 5_000, "gnn": 5_000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="networks to predict")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--space", default="mbv2")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "predict_speed.json"))
    args = ap.parse_args()

    import numpy as np
    import torch

    from hwnas.cost_models import model_names, synthetic
    from hwnas.cost_models.fitting import build_model
    from hwnas.ui import format_table

    torch.set_num_threads(args.threads)
    nets, y, table = synthetic.synthetic_dataset(args.space, n=300, seed=0)
    from hwnas import registry

    sp = registry.build("search_space", args.space)
    rng = np.random.default_rng(1)
    batch = [sp.to_network(sp.sample(rng)) for _ in range(args.n)]
    table.update(synthetic.make_table(batch))
    fast = {"mlp": {"steps": 200}, "lstm": {"steps": 100}, "gnn": {"steps": 100}}
    rows = []
    for name in model_names(all_only=True):
        model = build_model(name, 0, fast.get(name)).fit(nets, y, table)
        t0 = time.perf_counter()
        model.predict(batch)
        t1 = time.perf_counter()
        model.predict(batch)
        t2 = time.perf_counter()
        rows.append({"model": name, "first_per_s": round(args.n / (t1 - t0)), "repeat_per_s": round(args.n / (t2 - t1)),
                     "goal_per_s": GOALS[name], "meets_goal": args.n / (t1 - t0) >= GOALS[name]})
    print(f"{args.n} {args.space} networks, {args.threads} torch thread(s)")
    print(format_table(rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"n": args.n, "space": args.space, "threads": args.threads, "rows": rows},
                                         indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
