"""Specialisation targets: device -> cost source -> latency budget(s).

Given on the command line as repeatable ``--cost SOURCE --budget-ms X`` pairs, or in a
YAML file (``--targets FILE``)::

    targets:
      - device: this-cpu                      # a name for the report (default: the source's device)
        cost: runs/costmodels/lstm            # a cost-model folder, asset:NAME, or a mapping:
        budget_ms: [0.05, 0.06, 0.08]         #   {store: s.sqlite, device: cpu, backend: onnxruntime}
      - device: phone
        cost: {model: asset:some-model}
        budget_ms: 12

A SOURCE string is a cost-model folder or ``asset:NAME`` (a kernel predictor included),
or ``key=value`` pairs for the other kinds: ``store=s.sqlite,device=cpu,backend=onnxruntime``
or ``table=t.csv,column=gold_6226_ms``. Relative paths in a file resolve against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.cost_models.source import SourceRequest
from hwnas.errors import ConfigError
from hwnas.yamlio import read_yaml

#: keys a SOURCE may give (those of :class:`SourceRequest` a user names)
SOURCE_KEYS = ("model", "store", "table", "device", "backend", "column", "key", "estimator")
PATH_KEYS = ("model", "store", "table")


@dataclass(frozen=True)
class Target:
    """One specialisation: the device's name, its cost source and a budget (its unit's)."""

    device: str
    request: SourceRequest
    budget: float
    where: str


def parse_source(spec: str | Mapping[str, Any], where: str, base: Path | None = None) -> SourceRequest:
    """A SOURCE string or mapping as a cost-source request (errors name ``where``)."""
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ConfigError(f"{where}: empty cost source")
        if "=" not in text:
            fields: dict[str, Any] = {"model": text}
        else:
            fields = {}
            for part in text.split(","):
                k, sep, v = part.partition("=")
                if not sep or not k.strip() or not v.strip():
                    raise ConfigError(f"{where}: expected key=value pairs (e.g. store=s.sqlite,device=cpu,"
                                      f"backend=onnxruntime), got {part!r}")
                fields[k.strip()] = v.strip()
    elif isinstance(spec, Mapping):
        fields = {str(k): v for k, v in spec.items()}
    else:
        raise ConfigError(f"{where}: a cost source is a string or a mapping, got {spec!r}")
    unknown = sorted(set(fields) - set(SOURCE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(SOURCE_KEYS)})")
    for k, v in fields.items():
        if not isinstance(v, str):
            raise ConfigError(f"{where}.{k}: expected text, got {v!r}")
    for k in PATH_KEYS:
        if k in fields and base is not None and not fields[k].startswith("asset:") \
                and not Path(fields[k]).is_absolute():
            fields[k] = str(base / fields[k])
    req = SourceRequest(**fields, metric="latency", option=where)
    if len(req.given()) != 1:
        raise ConfigError(f"{where}: give exactly one of model, store, table; got {', '.join(req.given()) or 'none'}")
    return req


def check_budget(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: a budget is a finite number of ms > 0, got {value!r}")
    return float(value)


def targets_from_pairs(pairs: Sequence[tuple[str, Sequence[float]]]) -> list[Target]:
    """``--cost SOURCE --budget-ms X [--budget-ms Y ...]`` groups, in the order given."""
    if not pairs:
        raise ConfigError("--cost: give at least one cost source with its --budget-ms (or --targets FILE)")
    out = []
    for cost, budgets in pairs:
        if not budgets:
            raise ConfigError(f"--cost {cost}: give at least one --budget-ms after it")
        req = parse_source(cost, "--cost")
        out += [Target("", req, check_budget(b, "--budget-ms"), f"--cost {cost} --budget-ms {b:g}") for b in budgets]
    return out


def read_targets(path: str | Path) -> list[Target]:
    """The targets of a YAML file (safe_load); every problem names the file and entry."""
    p = Path(path)
    data = read_yaml(p, "targets file")
    items = data.get("targets") if isinstance(data, Mapping) else None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{p}: expected a mapping with a non-empty 'targets' list")
    out: list[Target] = []
    for i, item in enumerate(items):
        where = f"{p}: targets[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected a mapping with device, cost and budget_ms, got {item!r}")
        unknown = sorted(set(map(str, item)) - {"device", "cost", "budget_ms"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: device, cost, budget_ms)")
        if "cost" not in item or "budget_ms" not in item:
            raise ConfigError(f"{where}: needs cost and budget_ms")
        device = item.get("device", "")
        if not isinstance(device, str):
            raise ConfigError(f"{where}.device: expected a name, got {device!r}")
        req = parse_source(item["cost"], f"{where}.cost", p.resolve().parent)
        budgets = item["budget_ms"] if isinstance(item["budget_ms"], list) else [item["budget_ms"]]
        if not budgets:
            raise ConfigError(f"{where}.budget_ms: give at least one budget")
        out += [Target(device, req, check_budget(b, f"{where}.budget_ms"), where) for b in budgets]
    return out
