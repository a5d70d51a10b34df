"""Training data for cost models: from a cost store, or from a whole-network CSV.

Why here and not in the store: choosing what a model learns (network medians or
energies, the matching primitive table, which rows to keep) is a cost-model decision;
the store only answers queries. A network with a primitive missing from the table is
dropped with a warning and counted in the summary (the featurizer would refuse it);
if none is left, the error names a missing key.
"""
from __future__ import annotations

import difflib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import CostModelError, HwnasError
from hwnas.primitives import NetworkSpec

log = logging.getLogger(__name__)

#: target name -> (network row column, primitive table metric)
TARGETS: dict[str, tuple[str, str]] = {"latency": ("latency_ms", "latency_ms"), "energy": ("energy_mj", "energy_mj")}
UNITS = {"latency": "ms", "energy": "mJ"}


@dataclass(frozen=True)
class DataRequest:
    """Where a cost model's data come from: the measured networks (or primitives) of one
    device and backend in a ``store``, or a whole-network ``dataset`` (CSV) of ``space``
    with one column per device (``target`` names the column; rows below ``min_value``
    are dropped). The flags of ``hwnas fit-cost``, one to one."""

    store: str | Path | None = None
    device: str | None = None
    backend: str | None = None
    dataset: str | Path | None = None
    space: str | None = None
    space_options: Mapping[str, Any] | None = None
    target: str | None = None
    min_value: float = 0.1


@dataclass
class CostData:
    """Networks, their measured targets, and the primitive table (None for CSV data)."""

    networks: list[NetworkSpec]
    y: np.ndarray
    table: dict[str, float] | None
    target: str
    unit: str
    summary: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] | None = None


def from_store(store: Any, device: str | int, backend: str, target: str = "latency",
               settings: Mapping[str, Any] | None = None, *, with_table: bool = True,
               min_networks: int = 4, exclude_flagged: bool = False) -> CostData:
    """(networks, y, table) for one device + backend: y is the newest successful network
    measurement (latency_ms — the timing protocol's robust estimate — or energy_mj), the
    table is ``store.table`` with the same metric. ``with_table=False`` (few-shot transfer,
    table-free) keeps every measured network. ``exclude_flagged`` leaves out rows flagged
    as disturbed (falling back to an older clean row of the same item)."""
    if target not in TARGETS:
        raise CostModelError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    col, metric = TARGETS[target]
    dev = store.find_device(device)
    table = store.table(dev["id"], backend, metric=metric, settings=settings,
                        exclude_flagged=exclude_flagged) if with_table else {}
    if with_table and not table:
        raise CostModelError(f"{store.path}: no primitive {metric} for device {dev['name']!r} / {backend}")
    rows = store.query(device_id=dev["id"], backend=backend, kind="network", ok_only=True, latest=True,
                       exclude_flagged=exclude_flagged)
    if settings is None and len({r["settings_hash"] for r in rows}) > 1:
        # Several timing protocols: keep the one with the most networks, never mix them.
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["settings_hash"]] = counts.get(r["settings_hash"], 0) + 1
        keep = max(counts, key=lambda h: counts[h])
        log.warning("network rows under %d settings; using %s (%d rows)", len(counts), keep, counts[keep])
        rows = [r for r in rows if r["settings_hash"] == keep]
    newest: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r[col] is not None:
            newest[r["target"]] = r
    networks, y, dropped, missing = [], [], 0, ""
    for h, r in newest.items():
        net = store.network(h)
        absent = [p.key for p in net.nodes if p.key not in table] if with_table else []
        if absent:
            dropped += 1
            missing = missing or absent[0]
            continue
        if float(r[col]) <= 0:
            dropped += 1
            continue
        networks.append(net)
        y.append(float(r[col]))
    if dropped:
        log.warning("dropped %d network(s) with primitives missing from the table (e.g. %r)", dropped, missing)
    if len(networks) < min_networks:
        why = f"; e.g. primitive {missing!r} is not in the table" if missing else ""
        raise CostModelError(f"{store.path}: only {len(networks)} usable network measurement(s) of {target} for "
                             f"device {dev['name']!r} / {backend}{why}")
    summary = {"source": str(store.path), "device": dev["name"], "fingerprint": dev["fingerprint"],
               "backend": backend, "target": target, "networks": len(networks), "dropped": dropped,
               "primitives": len(table), "exclude_flagged": exclude_flagged}
    return CostData(networks, np.asarray(y), table if with_table else None, target, UNITS[target], summary,
                    {"name": dev["name"], "fingerprint": dev["fingerprint"], "info": dev["info"]})


def from_store_primitives(store: Any, device: str | int, backend: str, target: str = "energy",
                          exclude_ops: Sequence[str] = ("dpu_layer",), exclude_flagged: bool = False) -> CostData:
    """Per-primitive data, for stores that hold no whole networks (FPGA tables ingested
    from aw_nas YAML or DPU logs): each measured primitive becomes a one-node network.

    For ``energy`` the latency table of the same device is the table, so ``linear1`` is
    exactly "energy = mean power x latency + c" and the other models learn how power
    varies with the block's shape. For ``latency`` there is no table (it is the target):
    the table-free models predict a block's latency from its shape, which is what fills
    in primitives a device never ran. Ops in ``exclude_ops`` (opaque DPU layers whose
    shape fields are placeholders) are left out.
    """
    if target not in TARGETS:
        raise CostModelError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    dev = store.find_device(device)
    values = store.table(dev["id"], backend, metric=TARGETS[target][1], exclude_flagged=exclude_flagged)
    table = store.table(dev["id"], backend, metric="latency_ms", exclude_flagged=exclude_flagged) \
        if target == "energy" else None
    networks, y = [], []
    for key, v in sorted(values.items()):
        p = store.primitive(key)
        if p.op in exclude_ops or v <= 0 or (table is not None and key not in table):
            continue
        networks.append(NetworkSpec((p.c_in, p.h, p.w), (p,), (), (("arch", key),)))
        y.append(float(v))
    if len(networks) < 4:
        raise CostModelError(f"{store.path}: only {len(networks)} primitive(s) with {target} for device "
                             f"{dev['name']!r} / {backend}; need at least 4 to fit and hold some out")
    summary = {"source": str(store.path), "device": dev["name"], "fingerprint": dev["fingerprint"],
               "backend": backend, "target": target, "unit_of_data": "primitive", "networks": len(networks),
               "primitives": len(values), "table": "latency_ms" if table is not None else None}
    return CostData(networks, np.asarray(y), table, target, UNITS[target], summary,
                    {"name": dev["name"], "fingerprint": dev["fingerprint"], "info": dev["info"]})


#: Fewest networks on each side of a fit's split: rank metrics (Kendall's tau, Spearman)
#: need a pair of held-out networks, and a model needs a pair to learn any slope from.
MIN_TRAIN = 2
MIN_HELD_OUT = 2
MIN_FIT = MIN_TRAIN + MIN_HELD_OUT


def split(n: int, test_frac: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/test index split (at least one network on each side)."""
    if not 0 < test_frac < 1:
        raise CostModelError(f"test_frac: must be in (0, 1), got {test_frac}")
    if n < 2:
        raise CostModelError(f"need at least 2 networks to split, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(n * test_frac))), n - 1)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def from_csv(path: str | Path, space: str, target: str, *, arch_column: str | None = None,
             min_value: float = 0.1, space_options: Mapping[str, Any] | None = None,
             limit: int | None = None, min_rows: int = 2) -> CostData:
    """A whole-network table (one architecture per row, one column per device).

    Rows whose target is below ``min_value`` are dropped: degenerate NAS-Bench-201 cells
    measure near zero and would dominate every relative error.
    """
    from hwnas.inputs import numeric_column, read_csv

    p = Path(path)
    df = read_csv(p, "whole-network table", nrows=limit)
    if target not in df.columns:
        close = difflib.get_close_matches(target, [str(c) for c in df.columns], n=3, cutoff=0.4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CostModelError(f"{p}: no column {target!r}{hint}; columns: {', '.join(map(str, df.columns))}")
    col = arch_column or next((c for c in ("arch_str", "ops", "arch") if c in df.columns), None)
    if col is None:
        raise CostModelError(f"{p}: no architecture column (arch_str, ops or arch)")
    from hwnas.config import build_space

    sp = build_space(space, space_options)
    if not (math.isfinite(min_value) and min_value > 0):
        raise CostModelError(f"--min-value: must be > 0 (relative errors divide by the target), got {min_value}")
    values, missing = numeric_column(df, target, p)
    if missing:
        log.warning("%s: %d row(s) without a %s value dropped", p, missing, target)
    keep = values >= min_value
    if (~keep).any():
        log.warning("%s: %d row(s) with %s below --min-value %g dropped", p, int((~keep).sum()), target, min_value)
    values = values[keep]
    by_hash: dict[str, tuple[NetworkSpec, list[float]]] = {}
    for i, v in zip(values.index, values.to_numpy(dtype=np.float64)):
        try:
            net = sp.to_network(sp.from_str(str(df.at[i, col])))
        except HwnasError as exc:
            raise CostModelError(f"{p}:{int(i) + 2}: {exc}") from None
        by_hash.setdefault(net.hash, (net, []))[1].append(float(v))
    duplicates = len(values) - len(by_hash)
    if duplicates:
        # The same network twice would sit on both sides of a train/test split and
        # make held-out error look far better than it is: keep one row (median value).
        log.warning("%s: %d duplicate network row(s) merged (median value)", p, duplicates)
    networks = [n for n, _ in by_hash.values()]
    y = np.array([float(np.median(v)) for _, v in by_hash.values()], dtype=np.float64)
    if len(networks) < min_rows:
        why = f": {MIN_TRAIN} to train on, {MIN_HELD_OUT} held out" if min_rows == MIN_FIT else ""
        raise CostModelError(f"{p}: {len(networks)} usable row(s) for {target!r} (need at least {min_rows}{why})")
    summary = {"source": str(p), "space": space, "target": target, "networks": len(networks),
               "dropped_below_min": int((~keep).sum()), "dropped_missing": missing,
               "merged_duplicates": duplicates, "min_value": min_value, "space_options": dict(space_options or {})}
    return CostData(networks, y, None, target, "ms" if target.endswith("_ms") else "", summary, {"name": target})


def select(data: CostData, idx: Sequence[int]) -> tuple[list[NetworkSpec], np.ndarray]:
    idx = np.asarray(idx, dtype=np.int64)
    return [data.networks[i] for i in idx], data.y[idx]
