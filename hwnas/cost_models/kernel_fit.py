"""Fit a kernel model from a store, score it on held-out networks, and advise the kernel
job's adaptive sampling.

Held-out means whole networks: kernels of one random network are either all in the
training split or all in the test split, and the test networks' end-to-end times are
predicted from their kernels exactly as a new model's would be.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwnas.cost_models.data import split
from hwnas.cost_models.kernel_data import KernelData, load_kernel_data
from hwnas.cost_models.kernel_features import family
from hwnas.cost_models.kernel_model import KernelCostModel
from hwnas.cost_models.metrics import regression_metrics
from hwnas.cost_models.persistence import save_model
from hwnas.errors import CostModelError

log = logging.getLogger(__name__)

#: Tree settings of a kernel predictor fitted here when none are given: 150 trees of depth 4
#: (learning rate 0.1) instead of the model's 400 of depth 5. Measured on a kernel job's own
#: held-out random networks (285 networks measured on a loaded machine, 3 seeded 70/30 splits;
#: never the zoo): kernel-sum MAPE 0.125-0.147 vs 0.129-0.151 and end-to-end 0.232-0.243 vs
#: 0.239-0.247 (with the network-context slopes; before them 0.096-0.120 vs 0.103-0.119), a
#: 2.4-3x faster fit and a 4x smaller folder (1.3 MB vs 5.2 MB): what makes a new device's
#: predictor minutes and the shipped asset small.
FIT_PARAMS: dict[str, Any] = {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 4}


def _family_metrics(model: KernelCostModel, data: KernelData, idx: np.ndarray) -> dict[str, dict[str, float]]:
    """Per kernel family of the held-out networks; a family the training networks never
    had is reported as refused (its count), not priced."""
    prims, y = data.kernels(idx)
    fams: dict[str, list[int]] = {}
    for i, p in enumerate(prims):
        fams.setdefault(family(p.op), []).append(i)
    out: dict[str, dict[str, float]] = {}
    for f, ix in sorted(fams.items()):
        if f not in model.families_:
            out[f] = {"n": float(len(ix)), "refused": 1.0}
            continue
        pred = model.predict_kernels([prims[i] for i in ix])
        m = regression_metrics(y[ix], pred) if len(ix) > 1 else {"n": len(ix)}
        out[f] = {k: round(float(v), 4) for k, v in m.items()}
    return out


def _priced(model: KernelCostModel, data: KernelData, idx: np.ndarray) -> tuple[list[Any], int]:
    """The held-out networks whose every kernel family the model knows, and how many were refused."""
    nets = [data.nets[i] for i in idx]
    ok = [n for n in nets if all(family(p.op) in model.families_ for p in n.kernels if p.op != "input")]
    return ok, len(nets) - len(ok)


def _network_metrics(model: KernelCostModel, data: KernelData, idx: np.ndarray) -> dict[str, float]:
    """Held-out networks' predicted vs measured end-to-end times (refused ones counted)."""
    nets, refused = _priced(model, data, idx)
    if len(nets) < 2:
        return {"n": float(len(nets)), "refused": float(refused)}
    y = np.asarray([n.e2e_ms for n in nets])
    p = np.asarray([model.compose(model.predict_network(n.kernels), n.kernels) for n in nets])
    return {**{k: round(float(v), 4) for k, v in regression_metrics(y, p).items()}, "refused": float(refused)}


def _kernel_sum_metrics(model: KernelCostModel, data: KernelData, idx: np.ndarray) -> dict[str, float]:
    """Held-out networks' predicted vs measured kernel sums (what the stop rule judges:
    the kernel predictors alone, without the end-to-end map and its timing noise)."""
    nets, refused = _priced(model, data, idx)
    if len(nets) < 2:
        return {"n": float(len(nets)), "refused": float(refused)}
    y = np.asarray([float(np.sum(n.kernel_ms)) for n in nets])
    p = np.asarray([float(np.sum(model.predict_network(n.kernels))) for n in nets])
    return {**{k: round(float(v), 4) for k, v in regression_metrics(y, p).items()}, "refused": float(refused)}


def fit_kernel_model(store: Any, device: str | int, backend: str = "onnxruntime", *, test_frac: float = 0.2,
                     seed: int = 0, out: str | Path | None = None,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Fit on ``1 - test_frac`` of the kernel job's networks (all when 0), report held-out
    kernel (per family) and network metrics, save to ``out``; ``params`` are the tree
    settings (default :data:`FIT_PARAMS`)."""
    t0 = time.perf_counter()
    data = load_kernel_data(store, device, backend)
    load_s = time.perf_counter() - t0
    n = len(data.nets)
    tr, te = split(n, test_frac, seed) if test_frac > 0 else (np.arange(n), np.zeros(0, dtype=np.int64))
    t0 = time.perf_counter()
    model = KernelCostModel(seed=seed, **dict(FIT_PARAMS if params is None else params)).fit_kernels(data, tr)
    fit_s = time.perf_counter() - t0
    report: dict[str, Any] = {"data": data.summary, "model": "kernel", "n_train": int(len(tr)),
                              "params": dict(FIT_PARAMS if params is None else params),
                              "n_test": int(len(te)), "seed": seed, "load_s": round(load_s, 2),
                              "fit_s": round(fit_s, 2),
                              "overhead": list(model.overhead_),
                              "families": {f: m.n for f, m in model.families_.items()},
                              "fused_pairs": model.rules().fused_pairs()}
    if len(te) > 1:
        report["held_out_kernels"] = _family_metrics(model, data, te)
        report["held_out_networks"] = _network_metrics(model, data, te)
        report["held_out_kernel_sums"] = _kernel_sum_metrics(model, data, te)
    if out is not None:
        save_model(model, out, {"device": data.device, "training": {**data.summary, "train_networks": int(len(tr)),
                                                                    "test_networks": int(len(te)), "unit": "ms",
                                                                    "seed": seed}})
        report["out"] = str(out)
    return report


#: Tree settings of the advisor's per-fold fits: light (they run between rounds, inside
#: the job's time), since they only have to rank families and judge them against the stop rule.
ADVICE_PARAMS: dict[str, Any] = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 4}

#: Most networks the advisor judges (a seeded sample of the store's when it holds more). A
#: new device's job never reaches it within its 300 s; a top-up of a big store did: with
#: 2,100 networks stored, judging took 170 s of a 332 s piece, which then measured 300
#: networks instead of ~600. The sample still holds dozens of networks per block family.
ADVICE_MAX_NETWORKS = 600


def _out_of_fold_errors(data: KernelData, folds: int, seed: int) -> np.ndarray:
    """Per network, the relative error of its predicted kernel sum against the measured
    one, each network predicted by a model fitted on the other folds only (held out)."""
    n = len(data.nets)
    order = np.random.default_rng(seed).permutation(n)
    err = np.zeros(n)
    for f in range(folds):
        te = np.sort(order[f::folds])
        tr = np.setdiff1d(np.arange(n), te)
        model = KernelCostModel(seed=seed, **ADVICE_PARAMS).fit_kernels(data, tr)
        for i in te:
            net = data.nets[i]
            try:  # in the network's own context, as a whole model is priced (predict_network)
                pred = float(np.sum(model.predict_network(list(net.kernels), fallback=True)))
            except CostModelError:  # a family the other folds never had (tiny data): not judged
                err[i] = np.nan
                continue
            err[i] = abs(pred / float(np.sum(net.kernel_ms)) - 1.0)
    return err


def advise_round(store: Any, dev_id: int, backend: str, settings: Mapping[str, Any], rnd: int, *,
                 stop: Any = None, folds: int = 3) -> dict[str, Any]:
    """The kernel job's advice before round ``rnd``: judge every block family on held-out
    networks of rounds before ``rnd`` and weight the next round's draws.

    Each network is predicted out of fold (``folds`` fits, each on the other networks'
    kernels, priced in the network's own context as a whole model is
    (:meth:`~hwnas.cost_models.kernel_model.KernelCostModel.predict_network`); a
    family with no predictor yet is priced as a copy of its data); its error is that of its
    predicted kernel sum — what a whole model's price is made of, free of the end-to-end
    timing noise. A block family's error is the MAPE of the held-out networks that contain
    it: a bad neighbour can only keep a family drawing longer, never stop it too early.
    At most :data:`ADVICE_MAX_NETWORKS` networks are judged (a seeded sample of them).
    Families at most ``stop.mape`` on at least ``stop.min_networks`` networks get weight 0
    (no longer drawn); the others are weighted by the square of their error over the mean."""
    mape_stop = float(getattr(stop, "mape", 0.04))
    min_networks = int(getattr(stop, "min_networks", 20))
    try:
        data = load_kernel_data(store, dev_id, backend, max_round=rnd - 1)
    except CostModelError:  # no clean network yet: nothing to judge, every family stays drawn
        return {"weights": {}, "families": {}}
    if len(data.nets) < 2 * folds:
        return {"weights": {}, "families": {}}
    if len(data.nets) > ADVICE_MAX_NETWORKS:
        keep = np.sort(np.random.default_rng(rnd).choice(len(data.nets), ADVICE_MAX_NETWORKS, replace=False))
        data = replace(data, nets=[data.nets[i] for i in keep])
    err = _out_of_fold_errors(data, folds, rnd)
    score: dict[str, list[float]] = {}
    for i, net in enumerate(data.nets):
        for b in set(net.blocks):
            if np.isfinite(err[i]):
                score.setdefault(b, []).append(float(err[i]))
    families = {b: {"networks": len(v), "mape": round(float(np.mean(v)), 4),
                    "accurate": len(v) >= min_networks and float(np.mean(v)) <= mape_stop}
                for b, v in sorted(score.items())}
    wrong = [f["mape"] for f in families.values() if not f["accurate"]]
    mean = float(np.mean(wrong)) if wrong else 1.0
    weights = {b: 0.0 if f["accurate"] else round(float(np.clip((f["mape"] / max(mean, 1e-9)) ** 2, 0.25, 4.0)), 3)
               for b, f in families.items()}
    log.info("round %d: %d networks judged held out; accurate %s; weights %s", rnd, len(data.nets),
             [b for b, f in families.items() if f["accurate"]], weights)
    return {"weights": weights, "families": families}
