"""Fit the accuracy predictor of a supernet run: sample, score, split, fit, report, save.

The held-out split of *subnets* (``holdout``) never reaches the fit; the predictor's RMSE
and Kendall tau are measured on it, beside baselines computed in the same run: the
previous predictor (an MLP on the one-hot encoding), ridge regression on that encoding,
MACs only (a line through log multiply-adds) and the training mean (what "no predictor"
scores). The saved predictor is the cross-validated ensemble of
:mod:`~hwnas.search.ofa.ensemble`.

The labels are noisy: a subnet's BN-recalibrated accuracy depends on which training
batches recalibrated it. With ``noise`` the held-out subnets are scored a second time on
other calibration batches; the Kendall tau between the two scorings is the ceiling any
predictor's held-out tau can reach against one of them.
"""
from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwnas.errors import ConfigError
from hwnas.search.ofa.ensemble import EnsemblePredictor
from hwnas.search.ofa.features import numeric_features
from hwnas.search.ofa.predictor import AccuracyPredictor, held_out_metrics, ridge_predictions
from hwnas.search.ofa.sampling import SupernetRun, sample_archs, score_subnets

log = logging.getLogger(__name__)

SAMPLES_CSV = "samples.csv"


def fit_accuracy_predictor(run: SupernetRun, *, samples: int = 200, holdout: float = 0.25, seed: int = 0,
                           out: str | Path | None = None, noise: bool = True,
                           on_done: Callable[[int], None] | None = None) -> tuple[EnsemblePredictor, dict[str, Any]]:
    """Score ``samples`` subnets of ``run`` (the largest and smallest among them), fit the
    ensemble on all but a held-out ``holdout`` share, report its metrics and the baselines';
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
    pred = EnsemblePredictor(sp, run.space_id(), seed=seed).fit(train_a, acc[train_i])
    fit_s = time.perf_counter() - t1
    metrics = baselines(run, train_a, acc[train_i], test_a, acc[test_i], seed)
    metrics = {"ensemble": held_out_metrics(acc[test_i], pred.predict(test_a)), **metrics}
    if noise:
        again = np.array([s["accuracy"] for s in score_subnets(run, test_a, seed=seed + 1000)])
        metrics["label_noise"] = label_noise(acc[test_i], again)
    pred.metrics = metrics
    report = {"samples": len(archs), "train": len(train_i), "held_out": len(test_i), "score_s": score_s,
              "fit_s": fit_s, "metrics": metrics, "chosen": "+".join(pred.chosen), "cv": pred.cv,
              "accuracy_range": [float(acc.min()), float(acc.max())],
              "scored_on": f"valid split of dataset {run.config['dataset'].type!r}, BN recalibrated per subnet"}
    if out is not None:
        d = pred.save(out, extra={"run_dir": str(run.run_dir), **{k: v for k, v in report.items()
                                                                   if k not in ("metrics", "chosen", "cv")}})
        held = set(int(i) for i in test_i)
        with open(d / SAMPLES_CSV, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["arch_str", "arch", "accuracy", "loss", "held_out"])
            for i, (a, s) in enumerate(zip(archs, scores)):
                w.writerow([sp.to_str(a), "-".join(map(str, a)), s["accuracy"], s["loss"], int(i in held)])
        report["predictor"] = str(d)
    log.info("accuracy predictor: %d subnets scored in %.1f s; held-out %s", len(archs), score_s,
             metrics["ensemble"])
    return pred, report


def baselines(run: SupernetRun, train_a: list[Any], y_train: np.ndarray, test_a: list[Any], y_test: np.ndarray,
              seed: int) -> dict[str, dict[str, float]]:
    """Held-out metrics of what the ensemble is compared with, fitted on the same subnets."""
    sp = run.space
    old = AccuracyPredictor(sp, run.space_id(), seed=seed).fit(train_a, y_train)
    macs_tr, macs_te = (numeric_features(sp, a)[0][:, -2] for a in (train_a, test_a))
    line = np.polyfit(macs_tr, y_train, 1) if np.ptp(macs_tr) > 0 else np.array([0.0, y_train.mean()])
    return {"mlp": held_out_metrics(y_test, old.predict(test_a)),
            "ridge": held_out_metrics(y_test, ridge_predictions(sp, train_a, y_train, test_a)),
            "macs_only": held_out_metrics(y_test, np.polyval(line, macs_te)),
            "train_mean": held_out_metrics(y_test, np.full(len(y_test), y_train.mean()))}


def label_noise(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """Two scorings of the same subnets on other calibration batches: the noise of one
    label (std of their difference / sqrt 2) and the Kendall tau between them (the
    ceiling of a predictor's tau against one scoring)."""
    m = held_out_metrics(first, second)
    return {"n": int(len(first)), "label_std": float(np.std(first - second, ddof=1) / np.sqrt(2)) if len(first) > 1
            else 0.0, "kendall_tau_between_scorings": m["kendall_tau"], "rmse_between_scorings": m["rmse"],
            "label_spread_std": float(np.std(first, ddof=1)) if len(first) > 1 else 0.0}
