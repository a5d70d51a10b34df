"""Fit several cost models on one split, score them on the held-out part, write it all.

Why one function: ``hwnas fit-cost`` and the benchmarks must report the same thing in
the same way — every model beside the naive sum, on networks none of them saw — so the
loop lives in the library and the command only renders its result.
"""
from __future__ import annotations

import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas import registry
from hwnas.cost_models.data import MIN_HELD_OUT, MIN_TRAIN, CostData, select, split
from hwnas.cost_models.metrics import plot_predictions, regression_metrics, report_rows
from hwnas.cost_models.persistence import save_model
from hwnas.errors import CostModelError
from hwnas.inputs import output_dir

log = logging.getLogger(__name__)


def resolve_models(spec: str | Sequence[str], has_table: bool) -> list[str]:
    """``all`` or a comma list -> model names; table-only models are skipped without a table."""
    from hwnas.cost_models import model_names

    parts = [n.strip() for s in ([spec] if isinstance(spec, str) else spec) for n in s.split(",")]
    if not parts or not all(parts):
        raise CostModelError(f"--model: expected all or a comma list of {', '.join(model_names())} with no empty "
                             f"name, got {spec!r}")
    names = model_names(all_only=True) if parts == ["all"] else parts
    out = []
    for n in names:
        cls = registry.get("cost_model", n)
        if getattr(cls, "needs_table", False) and not has_table:
            if spec == "all":
                log.info("skipping %s: it needs a primitive table", n)
                continue
            raise CostModelError(f"model {n!r} needs a primitive cost table; whole-network data has none "
                                 "(use mlp, lstm or gnn)")
        out.append(n)
    if not out:
        raise CostModelError("no model to fit")
    return out


def build_model(name: str, seed: int = 0, params: Mapping[str, Any] | None = None) -> Any:
    cls = registry.get("cost_model", name)
    kw = dict(params or {})
    if "seed" in inspect.signature(cls.__init__).parameters:
        kw.setdefault("seed", seed)
    return cls(**kw)


def _split_checked(data: CostData, test_frac: float, seed: int, train: int | None) -> tuple[Any, Any]:
    """The train/held-out split, refused (one line naming the source and the option) when
    either side is below its minimum: held-out metrics of one network are not metrics."""
    n = len(data.networks)
    source = data.summary.get("source", "data")
    least = MIN_TRAIN + MIN_HELD_OUT
    if n < least:
        raise CostModelError(f"{source}: {n} usable network(s); fitting needs at least {least} "
                             f"({MIN_TRAIN} to train on, {MIN_HELD_OUT} held out)")
    if train is not None:
        if not MIN_TRAIN <= train <= n - MIN_HELD_OUT:
            raise CostModelError(f"--train: must be between {MIN_TRAIN} and {n - MIN_HELD_OUT} of the {n} networks "
                                 f"(at least {MIN_HELD_OUT} held out), got {train}")
        return split(n, 1.0 - train / n, seed)
    tr, te = split(n, test_frac, seed)
    if len(te) < MIN_HELD_OUT or len(tr) < MIN_TRAIN:
        raise CostModelError(f"--test-frac: {test_frac} splits {n} networks into {len(tr)} train / {len(te)} held "
                             f"out; need at least {MIN_TRAIN} / {MIN_HELD_OUT}")
    return tr, te


def fit_and_report(data: CostData, models: str | Sequence[str] = "all", *, test_frac: float = 0.3,
                   seed: int = 0, out: str | Path | None = None, train: int | None = None,
                   params: Mapping[str, Mapping[str, Any]] | None = None, plots: bool = True) -> dict[str, Any]:
    """Split, fit each model, score on held-out networks; with ``out``, write one folder per
    model, ``report.json`` and a predicted-vs-measured PNG per model.

    ``train`` (an int) trains on that many random networks and tests on all the others
    (the NAS-Bench-201 protocol); otherwise ``test_frac`` of the networks are held out.
    """
    names = resolve_models(models, data.table is not None)
    tr, te = _split_checked(data, test_frac, seed, train)
    x_tr, y_tr = select(data, tr)
    x_te, y_te = select(data, te)
    results: dict[str, dict[str, Any]] = {}
    preds: dict[str, np.ndarray] = {}
    out_dir = output_dir(out, "model folder", create=False) if out is not None else None
    for name in names:
        model = build_model(name, seed, (params or {}).get(name))
        t0 = time.perf_counter()
        model.fit(x_tr, y_tr, data.table)
        t1 = time.perf_counter()
        p = model.predict(x_te)
        t2 = time.perf_counter()
        try:
            m = regression_metrics(y_te, p)
        except CostModelError as exc:
            raise CostModelError(f"model {name}: {exc} (held-out targets {y_te.min():g} to {y_te.max():g})") from None
        m.update(fit_s=round(t1 - t0, 3), predict_per_s=round(len(x_te) / max(t2 - t1, 1e-9), 1))
        results[name] = m
        preds[name] = p
        log.info("%s: rmse %.4g, within 10%% %.3f, spearman %.4f", name, m["rmse"], m["within_10"], m["spearman"])
        if out_dir is not None:
            save_model(model, out_dir / name, {
                "device": data.device,
                "training": {**data.summary, "train_networks": len(tr), "test_networks": len(te),
                             "seed": seed, "unit": data.unit, "test_metrics": m},
            })
    report = {"data": data.summary, "target": data.target, "unit": data.unit, "n_train": int(len(tr)),
              "n_test": int(len(te)), "seed": seed, "models": results, "rows": report_rows(results)}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if plots:
            report["plots"] = [str(p) for p in plot_predictions(y_te, preds, out_dir, unit=data.unit or "")]
        (out_dir / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True, default=str))
        report["out"] = str(out_dir)
    return report
