"""Contract suite of the ``estimator`` role: how one latency is made from an item's
repeated timings (see hwnas/profilers/estimators.py).

The adaptive repeat loop and the stored ``latency_ms`` both call the estimator, on
host-timed runs with per-repeat thread CPU times and on GPU runs without them, so an
estimator must: return a finite number >= 0 inside the range of the samples it was
given, work with ``cpu=None`` and with one sample, scale with the samples (ms in, ms
out), leave its inputs alone, and not let one slow repeat among nine lift it above the
other eight (interference only ever adds time).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hwnas.testing._common import component, expect

ROLE = "estimator"

WALL = [1.02, 0.98, 1.10, 1.00, 1.05, 0.99, 1.01, 1.03, 1.04]
CPU = [0.97, 0.95, 1.00, 0.96, 0.99, 0.94, 0.97, 0.98, 0.99]


def _value(name: str, fn: Any, wall: list[float], cpu: list[float] | None) -> float:
    w, c = list(wall), None if cpu is None else list(cpu)
    out = fn(w, c)
    expect(w == list(wall) and (cpu is None or c == list(cpu)), ROLE, name, "must not modify the samples it is given")
    expect(isinstance(out, (int, float)) and not isinstance(out, bool) and math.isfinite(out) and out >= 0, ROLE,
           name, f"must return a finite number >= 0, got {out!r}")
    lo = min(wall + (cpu or []))
    hi = max(wall + (cpu or []))
    expect(lo - 1e-12 <= out <= hi + 1e-12, ROLE, name, f"{out} lies outside the samples' range [{lo}, {hi}]")
    return float(out)


def check(name: str, tmp_dir: Path | Any) -> None:
    """Range, cpu=None, one sample, scaling, determinism, one slow repeat."""
    fn = component(ROLE, name)
    expect(callable(fn), ROLE, name, "must be callable as fn(wall_samples, cpu_samples_or_None)")
    expect(bool((getattr(fn, "__doc__", None) or "").strip()), ROLE, name, "needs a docstring saying what it keeps")
    for cpu in (CPU, None):
        v = _value(name, fn, WALL, cpu)
        expect(_value(name, fn, WALL, cpu) == v, ROLE, name, "must be deterministic")
        scaled = _value(name, fn, [3 * x for x in WALL], None if cpu is None else [3 * x for x in cpu])
        expect(math.isclose(scaled, 3 * v, rel_tol=1e-9), ROLE, name,
               f"must scale with the samples: 3x the samples gave {scaled}, expected {3 * v}")
        slow = _value(name, fn, [*WALL[:-1], 25.0], None if cpu is None else [*cpu[:-1], CPU[-1]])
        expect(slow <= max(WALL[:-1] + (cpu or [])[:-1]) + 1e-12, ROLE, name,
               f"one slow repeat (25 ms among ~1 ms) lifted it to {slow}")
    expect(_value(name, fn, [2.0], [1.9]) in (2.0, 1.9), ROLE, name, "one sample must give that sample")
    expect(_value(name, fn, [2.0], None) == 2.0, ROLE, name, "one sample without CPU times must give that sample")
