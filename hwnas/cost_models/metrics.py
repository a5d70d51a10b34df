"""Accuracy metrics of a cost model on held-out networks, the report table and plots.

Why these: RMSE says how far off in milliseconds; relative RMSE, MAPE and the share
within ±5% / ±10% say how far off *for each network*, which is what a latency
constraint in a search cares about; Kendall's tau and Spearman say whether the model
ranks networks right, which is all a search needs when it only compares candidates.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import CostModelError

log = logging.getLogger(__name__)

#: Metric names in report order, with the column headers used in tables.
COLUMNS: tuple[str, ...] = ("model", "rmse", "rel_rmse", "mape", "within_5", "within_10", "kendall_tau",
                            "spearman")


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """All metrics for one model. Relative ones are fractions (0.05 = 5%)."""
    from scipy.stats import kendalltau, spearmanr

    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y.shape != p.shape or len(y) == 0:
        raise CostModelError(f"metrics need equal, non-empty arrays; got {y.shape} and {p.shape}")
    if np.any(y <= 0):
        raise CostModelError("metrics need measured values > 0 (relative errors divide by them)")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(p))):
        raise CostModelError("metrics need finite measured and predicted values")
    rel = (p - y) / y
    out = {
        "n": int(len(y)),
        "rmse": _rms(p - y),
        "rel_rmse": _rms(rel),
        "mape": float(np.mean(np.abs(rel))),
        # The epsilon keeps exact boundary cases (1.1 vs 1.0) inside despite rounding.
        "within_5": float(np.mean(np.abs(rel) <= 0.05 + 1e-9)),
        "within_10": float(np.mean(np.abs(rel) <= 0.10 + 1e-9)),
    }
    if len(y) > 1 and np.ptp(y) > 0 and np.ptp(p) > 0:
        out["kendall_tau"] = float(kendalltau(y, p).statistic)
        out["spearman"] = float(spearmanr(y, p).statistic)
    else:  # a constant prediction (or target) has no rank order
        out["kendall_tau"] = out["spearman"] = 0.0
    return out


def _rms(x: np.ndarray) -> float:
    """Root mean square computed on ``x / max|x|``, so values near the float64 limit (a
    1e300 error) give their true RMS instead of overflowing to inf in the square."""
    with np.errstate(over="ignore", invalid="ignore"):
        scale = float(np.max(np.abs(x))) if len(x) else 0.0
        if not np.isfinite(scale):
            return float("inf")
        if scale == 0.0:
            return 0.0
        return float(scale * np.sqrt(np.mean((x / scale) ** 2)))


def report_rows(results: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Rows for :func:`hwnas.ui.format_table`, naive sum (``lut``) first, relative metrics in %."""
    names = sorted(results, key=lambda n: (n != "lut", n))
    rows = []
    for name in names:
        m = results[name]
        row: dict[str, Any] = {"model": name, "rmse": m["rmse"]}
        for k in ("rel_rmse", "mape", "within_5", "within_10"):
            row[k] = round(100.0 * m[k], 2)
        row["kendall_tau"] = round(m["kendall_tau"], 4)
        row["spearman"] = round(m["spearman"], 4)
        if "lut" in results and name != "lut" and m["rmse"] > 0:
            row["vs_lut"] = round(results["lut"]["rmse"] / m["rmse"], 2)
        rows.append(row)
    return rows


REPORT_HEADERS = {"rel_rmse": "rel_rmse%", "mape": "mape%", "within_5": "±5%", "within_10": "±10%",
                  "kendall_tau": "tau", "vs_lut": "rmse_gain_vs_lut"}


def plot_predictions(y_true: Sequence[float], preds: Mapping[str, Sequence[float]], path: str | Path,
                     *, title: str = "", unit: str = "ms") -> list[Path]:
    """One PNG per model: predicted vs measured on log axes with the ±10% band.

    ``path`` is a folder; files are ``pred_vs_measured_<model>.png``. matplotlib is
    imported here, with the Agg backend, so the library never needs a display.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y_true, dtype=np.float64)
    lo, hi = float(y.min()) * 0.8, float(y.max()) * 1.25
    written = []
    for name, p in preds.items():
        p = np.asarray(p, dtype=np.float64)
        m = regression_metrics(y, p)
        fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
        ax.scatter(y, p, s=6, alpha=0.6)
        xs = np.array([lo, hi])
        ax.plot(xs, xs, "k-", lw=0.8)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10%")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"measured ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
        ax.set_title(f"{title + ' ' if title else ''}{name}: ±10% {100 * m['within_10']:.1f}%, "
                     f"ρ {m['spearman']:.3f}", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        f = out_dir / f"pred_vs_measured_{name}.png"
        fig.savefig(f)
        plt.close(fig)
        written.append(f)
    return written
