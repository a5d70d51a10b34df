"""Fit the accuracy predictor of a supernet run: sample, score, split, fit, report, save.

The held-out split of *subnets* (``holdout``) never reaches the fit; the predictor's RMSE
and Kendall tau are measured on it, beside two baselines computed in the same run:
ridge regression on the same encoding and the training mean (what "no predictor" scores).
"""
from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwnas.errors import ConfigError
from hwnas.search.ofa.predictor import AccuracyPredictor, held_out_metrics, ridge_predictions
from hwnas.search.ofa.sampling import SupernetRun, sample_archs, score_subnets

log = logging.getLogger(__name__)

SAMPLES_CSV = "samples.csv"


def fit_accuracy_predictor(run: SupernetRun, *, samples: int = 200, holdout: float = 0.25, seed: int = 0,
                           out: str | Path | None = None,
                           on_done: Callable[[int], None] | None = None) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """Score ``samples`` subnets of ``run`` (the largest and smallest among them), fit the
    MLP on all but a held-out ``holdout`` share, report its metrics and the baselines';
    with ``out`` the predictor and the scored samples are saved there."""
    if samples < 8:
        raise ConfigError(f"--samples: an accuracy predictor needs at least 8 scored subnets, got {samples}")
    if not 0 < holdout < 1:
        raise ConfigError(f"--holdout: must be between 0 and 1 (exclusive), got {holdout}")
    sp, wm = run.space, run.weights_manager
    archs = sample_archs(sp, samples, seed, extremes=[wm.extreme_arch("max"), wm.extreme_arch("min")])
    t0 = time.perf_counter()
    scores = score_subnets(run, archs, seed=seed, on_done=on_done)
    score_s = time.perf_counter() - t0
    acc = np.array([s["accuracy"] for s in scores])
    order = np.random.default_rng(seed + 1).permutation(len(archs))
    n_test = max(2, int(round(holdout * len(archs))))
    test_i, train_i = order[:n_test], order[n_test:]
    train_a, test_a = [archs[i] for i in train_i], [archs[i] for i in test_i]
    t1 = time.perf_counter()
    pred = AccuracyPredictor(sp, run.space_id(), seed=seed).fit(train_a, acc[train_i])
    fit_s = time.perf_counter() - t1
    metrics = {"mlp": held_out_metrics(acc[test_i], pred.predict(test_a)),
               "ridge": held_out_metrics(acc[test_i], ridge_predictions(sp, train_a, acc[train_i], test_a)),
               "train_mean": held_out_metrics(acc[test_i], np.full(len(test_i), acc[train_i].mean()))}
    pred.metrics = metrics
    report = {"samples": len(archs), "train": len(train_i), "held_out": len(test_i), "score_s": score_s,
              "fit_s": fit_s, "metrics": metrics, "accuracy_range": [float(acc.min()), float(acc.max())],
              "scored_on": f"valid split of dataset {run.config['dataset'].type!r}, BN recalibrated per subnet"}
    if out is not None:
        d = pred.save(out, extra={"run_dir": str(run.run_dir), **{k: v for k, v in report.items() if k != "metrics"}})
        held = set(int(i) for i in test_i)
        with open(d / SAMPLES_CSV, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["arch_str", "arch", "accuracy", "loss", "held_out"])
            for i, (a, s) in enumerate(zip(archs, scores)):
                w.writerow([sp.to_str(a), "-".join(map(str, a)), s["accuracy"], s["loss"], int(i in held)])
        report["predictor"] = str(d)
    log.info("accuracy predictor: %d subnets scored in %.1f s; held-out %s", len(archs), score_s, metrics["mlp"])
    return pred, report
