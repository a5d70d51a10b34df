"""Cost sources that read measured numbers: a store's per-primitive table and a
whole-network CSV table (see :mod:`hwnas.cost_models.source` for the contract).

Why the store source fixes its estimator once: the ``hardware`` objective and the
differentiable ``diff_hardware`` loss must optimise and report the same number, so every
consumer of a store reads the same column — by default ``latency_ms``, the timing
protocol's robust estimate (the median for rows measured before it existed).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.source import TARGETS, CostSource
from hwnas.errors import ConfigError, CostModelError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register

log = logging.getLogger(__name__)

#: target -> store columns a store source may read (the first is the default)
ESTIMATORS: dict[str, tuple[str, ...]] = {"latency": ("latency_ms", "median_ms", "mean_ms"),
                                          "energy": ("energy_mj",)}
ESTIMATOR_NOTES = {"latency_ms": "latency_ms, the timing protocol's robust estimate", "median_ms": "median_ms",
                   "mean_ms": "mean_ms", "energy_mj": "energy_mj"}


@register("cost_source", "store")
class StoreSource(CostSource):
    """Per-primitive measurements of one device and backend in a cost store (read-only)."""

    additive = True

    def __init__(self, path: str | Path, device: str, backend: str, *, target: str = "latency",
                 estimator: str | None = None, where: str | None = None,
                 settings: Mapping[str, Any] | None = None) -> None:
        from hwnas.store import Store

        self._set_target(target)
        column = estimator or ESTIMATORS[self.target][0]
        if column not in ESTIMATORS[self.target]:
            raise ConfigError(f"estimator: a store prices {self.target} with one of "
                              f"{', '.join(ESTIMATORS[self.target])}, got {column!r}")
        if not device or not backend:
            raise ConfigError("device: a store source needs device and backend")
        self.path, self.where, self.backend = Path(path), where or str(path), backend
        self.column, self.estimator = column, ESTIMATOR_NOTES[column]
        with Store(self.path, readonly=True) as st:  # mode=ro: never writes, never creates
            dev = st.find_device(device)
            self.table = st.table(dev["id"], backend, metric=column, settings=settings)
        self.device, self.device_ref = str(dev["name"]), device
        if not self.table:
            raise ConfigError(f"store: {self.where} has no {self.target} measurements of primitives ({column}) "
                              f"for device {device!r} / backend {backend!r}")

    def missing(self, p: Primitive) -> CostModelError:
        return CostModelError(f"{self.where} has no {self.target} of primitive {p.key!r} (op {p.op}) for device "
                              f"{self.device_ref!r} / backend {self.backend!r}")

    def item_costs(self, items: Sequence[Primitive]) -> np.ndarray:
        out = np.empty(len(items))
        for i, p in enumerate(items):
            v = self.table.get(p.key)
            if v is None:
                raise self.missing(p)
            out[i] = v
        return out

    def network_costs(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        """The naive sum of the nodes' table values (the ``lut`` cost model, nothing else)."""
        out = np.empty(len(networks))
        for i, net in enumerate(networks):
            total = 0.0
            for p in net.nodes:
                v = self.table.get(p.key)
                if v is None:
                    raise CostModelError(f"{self.missing(p)}; profile the space first")
                total += v
            out[i] = total
        return out


def read_table(path: Path, column: str, key: str) -> dict[str, float]:
    """``key`` column -> ``column`` values of a CSV (optionally .gz) file."""
    from hwnas.inputs import numeric_column, read_csv

    df = read_csv(path, f"objective.table (a CSV with columns {key!r} and {column!r})")
    for c in (key, column):
        if c not in df.columns:
            raise ConfigError(f"objective.column: {path} has no column {c!r}; columns: {', '.join(map(str, df.columns))}")
    values, missing = numeric_column(df, column, path)
    if missing:
        log.warning("%s: %d row(s) without a %s value; those architectures cannot be evaluated", path, missing, column)
    keys = df.loc[values.index, key].astype(str)
    table: dict[str, float] = {}
    for i, k, v in zip(values.index, keys, values.to_numpy(dtype=float)):
        if k in table and table[k] != v:
            raise ConfigError(f"{path}:{int(i) + 2}: architecture {k[:80]!r} appears twice with different {column}")
        table[k] = float(v)
    return table


@register("cost_source", "table")
class TableSource(CostSource):
    """Whole networks of a CSV table keyed by the space's architecture string (read-only)."""

    prices = frozenset({"networks"})

    def __init__(self, path: str | Path, column: str, key: str = "arch_str", *, target: str = "latency",
                 where: str | None = None, device: str | None = None, space: str | None = None) -> None:
        self._set_target(target)
        if not column:
            raise ConfigError("column: a table source needs the value column, e.g. gold_6226_ms")
        self.path, self.where, self.column, self.key = Path(path), where or str(path), column, key
        self.values = read_table(self.path, column, key)
        self.device = device or column
        self.space = space
        self.estimator = f"column {column} of a whole-network table"
        if TARGETS[self.target] == "ms" and column.lower().endswith("_mj") or \
                TARGETS[self.target] == "mJ" and column.lower().endswith("_ms"):
            raise ConfigError(f"column: {column!r} says {column.rsplit('_', 1)[-1]}, not {self.unit}")

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        out = np.empty(len(keys))
        for i, s in enumerate(keys):
            v = self.values.get(s)
            if v is None:
                raise CostModelError(f"{self.where} has no row for {s!r} (column {self.key})")
            out[i] = v
        return out

    def network_costs(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        keys = []
        for n in networks:
            arch = n.get_meta("arch")
            if arch is None:
                raise CostModelError(f"{self.where}: network {n.hash} carries no architecture string; a "
                                     "whole-network table prices networks of a search space only")
            keys.append(str(arch))
        return self.lookup(keys)

    def cost_archs(self, space: Any, archs: Sequence[Any]) -> np.ndarray:
        return self.lookup([space.to_str(a) for a in archs])

    def check_space(self, space: Any) -> None:
        mine = getattr(space, "registry_name", None)
        if self.space and mine and self.space != mine:
            raise ConfigError(f"table: {self.where} holds {self.space!r} networks, the search space is {mine!r}")
