"""Fit a kernel model from a store, score it on held-out networks, and advise the kernel
job's adaptive sampling.

Held-out means whole networks: kernels of one random network are either all in the
training split or all in the test split, and the test networks' end-to-end times are
predicted from their kernels exactly as a new model's would be.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwnas.cost_models.data import split
from hwnas.cost_models.kernel_data import KernelData, load_kernel_data
from hwnas.cost_models.kernel_features import family
from hwnas.cost_models.kernel_model import KernelCostModel
from hwnas.cost_models.metrics import regression_metrics
from hwnas.cost_models.persistence import save_model
from hwnas.cost_models.source_models import KernelSource

log = logging.getLogger(__name__)


def _family_metrics(model: KernelCostModel, data: KernelData, idx: np.ndarray) -> dict[str, dict[str, float]]:
    prims, y = data.kernels(idx)
    pred = model.predict_kernels(prims)
    fams: dict[str, list[int]] = {}
    for i, p in enumerate(prims):
        fams.setdefault(family(p.op), []).append(i)
    out = {}
    for f, ix in sorted(fams.items()):
        m = regression_metrics(y[ix], pred[ix]) if len(ix) > 1 else {"n": len(ix)}
        out[f] = {k: round(float(v), 4) for k, v in m.items()}
    return out


def _network_metrics(model: KernelCostModel, data: KernelData, idx: np.ndarray) -> dict[str, float]:
    nets = [data.nets[i] for i in idx]
    y = np.asarray([n.e2e_ms for n in nets])
    p = np.asarray([model.compose(model.predict_kernels(n.kernels)) for n in nets])
    return {k: round(float(v), 4) for k, v in regression_metrics(y, p).items()}


def fit_kernel_model(store: Any, device: str | int, backend: str = "onnxruntime", *, test_frac: float = 0.2,
                     seed: int = 0, out: str | Path | None = None,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Fit on ``1 - test_frac`` of the kernel job's networks (all when 0), report held-out
    kernel (per family) and network metrics, save to ``out``."""
    data = load_kernel_data(store, device, backend)
    n = len(data.nets)
    tr, te = split(n, test_frac, seed) if test_frac > 0 else (np.arange(n), np.zeros(0, dtype=np.int64))
    t0 = time.perf_counter()
    model = KernelCostModel(seed=seed, **dict(params or {})).fit_kernels(data, tr)
    fit_s = time.perf_counter() - t0
    report: dict[str, Any] = {"data": data.summary, "model": "kernel", "n_train": int(len(tr)),
                              "n_test": int(len(te)), "seed": seed, "fit_s": round(fit_s, 2),
                              "overhead": list(model.overhead_),
                              "families": {f: m.n for f, m in model.families_.items()},
                              "fused_pairs": model.rules().fused_pairs()}
    if len(te) > 1:
        report["held_out_kernels"] = _family_metrics(model, data, te)
        report["held_out_networks"] = _network_metrics(model, data, te)
    if out is not None:
        save_model(model, out, {"device": data.device, "training": {**data.summary, "train_networks": int(len(tr)),
                                                                    "test_networks": int(len(te)), "unit": "ms",
                                                                    "seed": seed}})
        report["out"] = str(out)
    return report


def advise_weights(store: Any, dev_id: int, backend: str, settings: Mapping[str, Any], rnd: int,
                   folds: int = 3) -> dict[str, float]:
    """Block-family weights for round ``rnd`` of the kernel job: each family of random
    blocks is weighted by the cross-validated error of the kernels in the networks that
    contained it (rounds before ``rnd``), so poorly predicted regions get sampled more.
    Each fold's predictor prices kernels through a
    :class:`~hwnas.cost_models.source_models.KernelSource` (a family it has no predictor
    for is priced as a copy of its data)."""
    data = load_kernel_data(store, dev_id, backend, max_round=rnd - 1)
    n = len(data.nets)
    if n < 2 * folds:
        return {}
    order = np.random.default_rng(rnd).permutation(n)
    err = np.zeros(n)
    for f in range(folds):
        te = np.sort(order[f::folds])
        tr = np.setdiff1d(np.arange(n), te)
        model = KernelCostModel(n_estimators=100, seed=rnd).fit_kernels(data, tr)
        source = KernelSource(model, where=f"kernel predictor of round {rnd} fold {f}", items="kernels")
        for i in te:
            net = data.nets[i]
            pred = source.cost(list(net.kernels))
            err[i] = float(np.mean(np.abs(pred - np.asarray(net.kernel_ms)) / np.asarray(net.kernel_ms)))
    score: dict[str, list[float]] = {}
    for i, net in enumerate(data.nets):
        for b in set(net.blocks):
            score.setdefault(b, []).append(err[i])
    mean = float(err.mean()) or 1.0
    weights = {b: round((float(np.mean(v)) / mean) ** 2, 3) for b, v in score.items()}
    log.info("round %d block weights from %d networks: %s", rnd, n, weights)
    return weights
