"""Where a kernel predictor's fit goes, and the lighter default against the model's own.

  python bench/kernel_fit_speed.py --store runs/any-model/store.sqlite [--splits 3]

On the networks of a kernel job (random networks only, never the zoo), for each tree
setting — the model's own defaults (400 trees of depth 5, learning rate 0.05) and
``kernel_fit.FIT_PARAMS`` — fits on seeded 70/30 splits by network and reports the fit
time, the held-out networks' kernel-sum MAPE and end-to-end MAPE, and the saved folder's
size; plus where one fit's time goes per kernel family. The baseline is measured in the
same run. Writes ``bench/results/kernel_fit_speed.json`` with the load average around the
run (timings on a loaded machine are inflated; the ratios are what carries over).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def _one(data: Any, params: dict[str, Any], splits: int) -> dict[str, Any]:
    from hwnas.cost_models.data import split
    from hwnas.cost_models.kernel_model import KernelCostModel
    from hwnas.cost_models.persistence import save_model

    fit_s, sums, e2e = [], [], []
    for seed in range(splits):
        tr, te = split(len(data.nets), 0.3, seed)
        t0 = time.perf_counter()
        m = KernelCostModel(seed=seed, **params).fit_kernels(data, tr)
        fit_s.append(time.perf_counter() - t0)
        nets = [data.nets[i] for i in te]
        sums.append(float(np.mean([abs(m.predict_kernels(n.kernels, fallback=True).sum() / sum(n.kernel_ms) - 1)
                                   for n in nets])))
        e2e.append(float(np.mean([abs(m.compose(m.predict_kernels(n.kernels, fallback=True), n.kernels) / n.e2e_ms - 1)
                                  for n in nets])))
    with tempfile.TemporaryDirectory() as tmp:
        save_model(m, tmp)
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
    return {"params": params, "fit_s": [round(v, 2) for v in fit_s], "kernel_sum_mape": [round(v, 4) for v in sums],
            "e2e_mape": [round(v, 4) for v in e2e], "size_kb": round(size / 1024, 1)}


def _by_family(data: Any, params: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Seconds per kernel family of one fit on all networks (the boosting dominates)."""
    from hwnas.cost_models.kernel_features import family
    from hwnas.cost_models.kernel_model import KernelCostModel

    prims, y = data.kernels()
    fams: dict[str, list[int]] = {}
    for i, p in enumerate(prims):
        fams.setdefault(family(p.op), []).append(i)
    m, out = KernelCostModel(**params), {}
    for f, ix in sorted(fams.items(), key=lambda kv: -len(kv[1])):
        t0 = time.perf_counter()
        m.fit_family([prims[i] for i in ix], y[ix])
        out[f] = {"kernels": len(ix), "fit_s": round(time.perf_counter() - t0, 2)}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default=str(ROOT / "runs" / "any-model" / "store.sqlite"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--splits", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "kernel_fit_speed.json"))
    args = p.parse_args(argv)
    if not Path(args.store).exists():
        print(f"skipped: {args.store} not found (run a kernel job first: bench/any_model.py kernels)")
        return
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_fit import FIT_PARAMS
    from hwnas.store import Store

    load_before = os.getloadavg()[0]
    with Store(args.store, readonly=True) as st:
        t0 = time.perf_counter()
        data = load_kernel_data(st, args.device)
        load_s = time.perf_counter() - t0
    rows = [_one(data, {}, args.splits), _one(data, dict(FIT_PARAMS), args.splits)]
    rows[0]["params"] = "model defaults (400 trees, depth 5, learning rate 0.05)"
    fam = {"model defaults": _by_family(data, {}), "FIT_PARAMS": _by_family(data, dict(FIT_PARAMS))}
    out = {"store": str(args.store), "networks": data.summary["networks"], "kernels": data.summary["kernels"],
           "load_s": round(load_s, 2), "settings": rows, "fit_s_by_family": fam,
           "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
           "data": "random networks of the kernel job only (never the zoo)"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"{data.summary['networks']} networks, {data.summary['kernels']} kernels (load {load_s:.1f} s; load "
          f"average {out['load_average_1min']})")
    print(f"{'setting':58s} {'fit s':>7s} {'kernel-sum MAPE':>16s} {'e2e MAPE':>9s} {'size kB':>8s}")
    for r in rows:
        print(f"{str(r['params'])[:58]:58s} {np.mean(r['fit_s']):7.1f} {np.mean(r['kernel_sum_mape']):16.3f} "
              f"{np.mean(r['e2e_mape']):9.3f} {r['size_kb']:8.0f}")
    for name, f in fam.items():
        total = sum(v["fit_s"] for v in f.values())
        top = ", ".join(f"{k} {v['fit_s']} s" for k, v in list(f.items())[:3])
        print(f"one fit on all networks, {name}: {total:.1f} s ({top}, ...)")


if __name__ == "__main__":
    main()
