"""Energy per inference from a power log, attached to parsed latency records.

Two methods, and each stored row says which one it used (``extra.energy_method``):

* ``integral``: energy of a run = integral of power over its window (trapezoids over the
  piecewise-linear power signal) divided by the run's inference count. Needs the count
  (``--inferences`` or a 4th column in the segments file).
* ``mean_power_x_latency``: mean power over the run's window times the item's latency
  (W x ms = mJ). Used when the inference count is unknown.
* ``log_mean_power_x_latency``: no segments at all — the whole log's mean power times
  each item's latency. A coarse approximation (every layer gets the network's average
  power); only sensible when the log covers one profiled run.

Power is the sum of the selected rails including static power; nothing is subtracted,
because an idle baseline is not in the logs and guessing one would hide that.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.profilers.ingest.base import Record, Skipped
from hwnas.profilers.ingest.power import PowerLog, Segment

#: A window must be this much covered by the power log to be trusted.
MIN_COVERAGE = 0.9


def window_power(log: PowerLog, start: float, end: float) -> tuple[float, float] | None:
    """(mean watts, covered fraction) of [start, end] in the log's clock; None if disjoint."""
    t = np.asarray(log.times, dtype=float)
    w = np.asarray(log.watts, dtype=float)
    lo, hi = max(start, t[0]), min(end, t[-1])
    if hi < lo:
        return None
    if hi == lo:
        return float(np.interp(lo, t, w)), (1.0 if end == start else 0.0)
    inner = t[(t > lo) & (t < hi)]
    pts = np.concatenate(([lo], inner, [hi]))
    vals = np.interp(pts, t, w)
    integral = float(np.sum((vals[1:] + vals[:-1]) * np.diff(pts)) / 2.0)
    return integral / (hi - lo), (hi - lo) / (end - start) if end > start else 1.0


def _median(xs: Sequence[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=float)))


def attach_energy(records: Sequence[Record], names: dict[int, set[str]], log: PowerLog,
                  segments: Sequence[Segment] | None, clock_offset_h: float = 0.0,
                  inferences: int | None = None) -> list[Skipped]:
    """Set ``energy_mj`` / ``power_w`` on records; return segments that matched nothing.

    ``names`` gives, per record index, the names a segment may use for it (its raw log
    name and its resolved target key).
    """
    skipped: list[Skipped] = []
    usable = [r for r in records if r.error is None and r.samples_ms]
    if not segments:
        mean = window_power(log, log.times[0], log.times[-1])
        assert mean is not None
        for r in usable:
            r.power_w = mean[0]
            r.energy_mj = mean[0] * _median(r.samples_ms)
            r.extra.update(energy_method="log_mean_power_x_latency", power_log=log.path.name,
                           power_rails=log.rails)
        return skipped
    ok = {id(r) for r in usable}
    by_name: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if id(r) in ok:
            for n in names.get(i, {r.name}):
                by_name.setdefault(n, []).append(i)
    found: dict[int, list[tuple[float, float, str]]] = {}
    for seg in segments:
        where = f"{log.path.name} / segments:{seg.line}"
        hits = by_name.get(seg.name)
        if not hits:
            skipped.append(Skipped(where, seg.name, "segment names no latency record"))
            continue
        shift = clock_offset_h * 3600.0
        got = window_power(log, seg.start + shift, seg.end + shift)
        if got is None or got[1] < MIN_COVERAGE:
            cov = 0.0 if got is None else got[1]
            skipped.append(Skipped(where, seg.name, f"power log covers {cov:.0%} of the run window "
                                                    "(check the clock offset)"))
            continue
        watts = got[0]
        count = seg.inferences or inferences
        for i in hits:
            r = records[i]
            if count:
                e, method = watts * (seg.end - seg.start) / count * 1000.0, "integral"
            else:
                e, method = watts * _median(r.samples_ms), "mean_power_x_latency"
            found.setdefault(i, []).append((e, watts, method))
    for i, vals in found.items():
        r = records[i]
        r.energy_mj = sum(v[0] for v in vals) / len(vals)
        r.power_w = sum(v[1] for v in vals) / len(vals)
        r.extra.update(energy_method=vals[0][2], power_log=log.path.name, power_rails=log.rails,
                       power_windows=len(vals), clock_offset_h=clock_offset_h)
    return skipped
