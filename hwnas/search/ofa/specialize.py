"""``hwnas specialize``: one trained supernet, one derived subnet per device and budget.

Once the accuracy predictor is fitted (or loaded), each target is an evolutionary search
(:mod:`~hwnas.search.ofa.evolve`) over the predictor under that device's cost source,
which takes seconds; the supernet is never run again. Writes, into the output folder:

* ``specialized.yaml`` - one architecture record per target (device, budget, predicted
  accuracy and cost, the space and its options), readable by ``hwnas train --arch FILE
  --rank N --from-supernet RUN_DIR`` (fine-tune from the inherited weights) and ``hwnas test``;
* ``specialize.json`` - the same with the predictor's held-out metrics and the time per target;
* ``accuracy_vs_budget.png`` - predicted accuracy against the budget, one line per device.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from hwnas.cost_models.source import CostSource, SourceRequest, open_source
from hwnas.errors import ConfigError, CostModelError, InputError
from hwnas.inputs import output_dir
from hwnas.search.ofa.ensemble import EnsemblePredictor, load_predictor
from hwnas.search.ofa.evolve import CostCache, EvolutionOptions, check_feasible, evolve
from hwnas.search.ofa.fit import fit_accuracy_predictor
from hwnas.search.ofa.predictor import AccuracyPredictor
from hwnas.search.ofa.pricing import arch_pricing
from hwnas.search.ofa.sampling import SupernetRun, open_supernet_run
from hwnas.search.ofa.targets import Target

log = logging.getLogger(__name__)

ARCH_FILE, SUMMARY, PLOT, PREDICTOR_DIR = "specialized.yaml", "specialize.json", "accuracy_vs_budget.png", \
    "acc_predictor"


@dataclass(frozen=True)
class SpecializeRequest:
    """What ``hwnas specialize`` was asked: the run, the targets and how to get a predictor."""

    run_dir: str | Path
    targets: Sequence[Target]
    out: str | Path | None = None
    predictor: str | Path | None = None
    samples: int = 200
    holdout: float = 0.25
    seed: int = 0
    evolution: EvolutionOptions = field(default_factory=EvolutionOptions)
    device: str | None = None
    margin: float = 0.0

    def search_budget(self, target: Target) -> float:
        """The budget the search must meet: ``margin`` below the target's, to leave room
        for the cost source's error (e.g. its held-out relative RMSE)."""
        return target.budget * (1.0 - self.margin)


def _predictor(run: SupernetRun, req: SpecializeRequest, out: Path,
               on_scored: Callable[[int], None] | None) -> tuple[AccuracyPredictor | EnsemblePredictor, dict[str, Any]]:
    if req.predictor is not None:
        pred = load_predictor(req.predictor, run.space, run.space_id())
        return pred, {"predictor": str(req.predictor), "metrics": pred.metrics, "loaded": True,
                      "chosen": "+".join(getattr(pred, "chosen", [])) or "mlp (format 1)"}
    return fit_accuracy_predictor(run, samples=req.samples, holdout=req.holdout, seed=req.seed,
                                  out=out / PREDICTOR_DIR, on_done=on_scored)


def _open(target: Target, run: SupernetRun, opened: dict[SourceRequest, CostCache]) -> CostCache:
    """The target's source (opened once per distinct request), checked against the run's
    space: another space's source is refused in one line naming it."""
    if target.request in opened:
        return opened[target.request]
    src: CostSource = open_source(target.request)
    sp = run.space
    src.check_space(sp)
    smallest = run.weights_manager.extreme_arch("min")
    try:
        pricing = arch_pricing(src, sp)
        cache = CostCache(sp, pricing)
        cache([smallest])
    except CostModelError as exc:
        raise ConfigError(f"{target.where}: {src.where} does not price this run's {sp.name} networks "
                          f"({' '.join(str(exc).split())})") from None
    cache.source, cache.pricing = src, pricing  # type: ignore[attr-defined]
    opened[target.request] = cache
    return cache


def _describe(cache: CostCache) -> Callable[[float], str]:
    src = cache.source  # type: ignore[attr-defined]
    return lambda v: f"{v:.4g} {src.unit} ({src.where})"


def _one(target: Target, run: SupernetRun, pred: AccuracyPredictor | EnsemblePredictor, cache: CostCache,
         req: SpecializeRequest) -> dict[str, Any]:
    sp, src = run.space, cache.source  # type: ignore[attr-defined]
    unit = src.unit
    t0 = time.perf_counter()
    try:
        found = evolve(sp, pred.predict, cache, req.search_budget(target), req.evolution,
                       run.weights_manager.extreme_arch("min"), _describe(cache))
    except InputError as exc:
        raise InputError(f"{target.where}: {exc}") from None
    seconds = time.perf_counter() - t0
    return {"device": target.device or src.device, "source": src.where, "estimator": src.estimator,
            f"budget_{unit.lower()}": target.budget, "search_budget": req.search_budget(target),
            f"predicted_{src.target}_{unit.lower()}": found.cost,
            "predicted_accuracy": found.accuracy, "arch_str": sp.to_str(found.arch), "arch": list(found.arch),
            "seconds": seconds, "networks_priced": found.priced, "target": target.where,
            "pricing": cache.pricing.info}  # type: ignore[attr-defined]


def specialize(req: SpecializeRequest, on_scored: Callable[[int], None] | None = None,
               on_target: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Fit (or load) the predictor, then search every target; returns the summary."""
    if not 0 <= req.margin < 1:
        raise ConfigError(f"--margin: a share of the budget in [0, 1), got {req.margin}")
    if not req.targets:
        raise ConfigError("--cost: give at least one target (--cost/--budget-ms pairs or --targets FILE)")
    run = open_supernet_run(req.run_dir, req.device)
    out = output_dir(req.out if req.out is not None else Path(req.run_dir) / "specialize", "output folder")
    opened: dict[SourceRequest, CostCache] = {}
    caches = [_open(t, run, opened) for t in req.targets]  # every source checked before any work
    smallest = run.weights_manager.extreme_arch("min")
    for t, cache in zip(req.targets, caches):  # and every budget
        try:
            check_feasible(run.space, cache, req.search_budget(t), smallest, _describe(cache), req.seed)
        except InputError as exc:
            raise InputError(f"{t.where}: {exc}") from None
    t0 = time.perf_counter()
    pred, pred_report = _predictor(run, req, out, on_scored)
    pred_s = time.perf_counter() - t0
    results = []
    for t, cache in zip(req.targets, caches):
        rec = _one(t, run, pred, cache, req)
        results.append(rec)
        if on_target is not None:
            on_target(rec)
    space_id = run.space_id()
    records = [{**r, "space": space_id["type"], "space_options": {k: v for k, v in space_id.items() if k != "type"}}
               for r in results]
    (out / ARCH_FILE).write_text(yaml.safe_dump(records, sort_keys=False))
    summary = {"run_dir": str(req.run_dir), "space": space_id, "predictor": pred_report, "predictor_s": pred_s,
               "targets": results, "out": str(out), "arch_file": str(out / ARCH_FILE),
               "max_target_s": max(r["seconds"] for r in results)}
    (out / SUMMARY).write_text(json.dumps(summary, indent=2))
    plot_accuracy_vs_budget(results, out / PLOT)
    summary["plot"] = str(out / PLOT)
    return summary


def plot_accuracy_vs_budget(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Predicted accuracy against the budget, one line per device (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    budget_key = next((k for k in results[0] if k.startswith("budget_")), "budget_ms")
    for dev in dict.fromkeys(r["device"] for r in results):
        rows = sorted((r for r in results if r["device"] == dev), key=lambda r: r[budget_key])
        ax.plot([r[budget_key] for r in rows], [r["predicted_accuracy"] for r in rows], "o-", label=dev)
    ax.set_xlabel(budget_key.replace("_", " (") + ")")
    ax.set_ylabel("predicted accuracy (inherited weights)")
    ax.set_title("specialised subnets: accuracy vs budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
