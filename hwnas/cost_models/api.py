"""The library behind ``hwnas fit-cost`` and ``hwnas predict``.

Policies live here, not in the command line: where the data come from (a store or a
whole-network table), which models ``fit-cost`` fits when none are named, and how a
file of networks to predict is read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.cost_models.data import TARGETS, CostData, DataRequest
from hwnas.errors import ConfigError, CostModelError, HwnasError
from hwnas.inputs import read_text
from hwnas.primitives import NetworkSpec


def load_data(request: DataRequest, *, unit: str = "network", exclude_flagged: bool = False) -> CostData:
    """Training data for cost models: measured networks (or primitives) of a store, or a
    whole-network table with one column per device."""
    from hwnas.cost_models import data as cdata

    store, device, backend, dataset = request.store, request.device, request.backend, request.dataset
    space, target = request.space, request.target
    if dataset:
        for given, flag in ((exclude_flagged, "--exclude-flagged"), (unit == "primitive", "--unit primitive")):
            if given:
                raise ConfigError(f"{flag} needs --store: a whole-network table (--dataset) has neither flags nor "
                                  "primitives")
        if not space or not target or target in TARGETS:
            raise ConfigError("--dataset needs --space and --target (a device column, e.g. gold_6226_ms); "
                              f"got --space {space or '(none)'}, --target {target or '(none)'}")
        return cdata.from_csv(dataset, space, target, min_value=request.min_value,
                              space_options=request.space_options, min_rows=cdata.MIN_FIT)
    if not store:
        raise ConfigError("give --store (with --device and --backend) or --dataset (with --space and --target)")
    if not device or not backend:
        raise ConfigError("--store needs --device and --backend (which measurements to fit on)")
    from hwnas.store import Store

    with Store(store, readonly=True) as st:
        if unit == "primitive":
            return cdata.from_store_primitives(st, device, backend, target or "latency",
                                               exclude_flagged=exclude_flagged)
        return cdata.from_store(st, device, backend, target or "latency", exclude_flagged=exclude_flagged)


def default_models(unit: str, has_table: bool) -> str:
    """What ``fit-cost`` fits when no model is named: everything a table allows; on
    primitives the models that generalise across shapes; on tables without primitives, mlp."""
    if unit == "primitive":
        return "linear1,mlp,gnn" if has_table else "mlp,gnn"
    return "all" if has_table else "mlp"


def fit_cost(data: CostData, model: str | None = None, *, unit: str = "network", test_frac: float = 0.3,
             seed: int = 0, out: str | Path | None = None, train: int | None = None) -> dict[str, Any]:
    """Fit the named (or default) models on ``data``; the held-out report (see fitting)."""
    from hwnas.cost_models.fitting import fit_and_report

    models = default_models(unit, data.table is not None) if model is None else model
    return fit_and_report(data, models, test_frac=test_frac, seed=seed, out=out, train=train)


def read_networks(path: str | Path, space: Any) -> list[tuple[str, NetworkSpec]]:
    """(label, NetworkSpec) pairs from a JSON list / JSON lines of NetworkSpec dicts, or a
    text file of the space's architecture strings (one per line, ``#`` comments)."""
    stripped = read_text(path, "networks file").strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CostModelError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(items, list):
            raise CostModelError(f"{path}: expected a list of NetworkSpec objects")
        nets = []
        for i, d in enumerate(items):
            try:
                nets.append(NetworkSpec.from_dict(d))
            except HwnasError as exc:
                raise CostModelError(f"{path}: network {i}: {exc}") from None
        if not nets:
            raise CostModelError(f"{path}: holds no networks")
        return [(n.get_meta("arch") or n.hash, n) for n in nets]
    out = []
    for i, line in enumerate(stripped.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                n = NetworkSpec.from_json(line)
            except HwnasError as exc:
                raise CostModelError(f"{path}:{i}: {exc}") from None
            out.append((n.get_meta("arch") or n.hash, n))
        else:
            if space is None:
                raise ConfigError(f"{path}:{i}: an architecture string needs --space (the search space it is of)")
            try:
                out.append((line, space.to_network(space.from_str(line))))
            except HwnasError as exc:
                raise CostModelError(f"{path}:{i}: {exc}") from None
    if not out:
        raise CostModelError(f"{path}: holds no networks")
    return out


def predict(model: str | Path, *, space: str | None = None, space_options: Mapping[str, Any] | None = None,
            archs: Sequence[str] = (), networks: str | Path | None = None) -> dict[str, Any]:
    """Costs of architecture strings of a space and/or a file of networks, from the cost
    source of a saved model (a folder or ``asset:NAME``), which says what it predicts."""
    from hwnas.config import build_space
    from hwnas.cost_models.source import SourceRequest, open_source

    if archs and not space:
        raise ConfigError("--arch needs --space: an architecture string is read by its search space "
                          "(e.g. --space nb201)")
    src = open_source(SourceRequest(model=model, option="--model"), check_metric=False)
    sp = build_space(space, space_options) if space else None
    if sp is not None:
        try:
            src.check_space(sp)
        except ConfigError as exc:
            raise ConfigError(f"--{exc}") from None
    items: list[tuple[str, NetworkSpec]] = read_networks(networks, sp) if networks else []
    for a in archs:
        assert sp is not None  # checked above
        items.append((a, sp.to_network(sp.from_str(a))))
    if not items:
        raise ConfigError("give --arch (with --space) or --networks FILE")
    try:
        preds = src.cost([n for _, n in items])
    except HwnasError as exc:
        raise CostModelError(f"{model}: {exc}") from None
    rows = [{"network": label, "hash": n.hash, "prediction": float(p)} for (label, n), p in zip(items, preds)]
    return {"model": str(model), "unit": src.unit, "target": src.target, "device": src.device,
            "estimator": src.estimator, "predictions": rows}
