"""Latency estimators: how one number is made from an item's repeated timings.

Why several: interference on a shared machine only ever adds time (the timed thread is
preempted, or its caches are evicted by a competitor), so the plain median of wall-clock
samples drifts with the machine's load, while the minimum, a low percentile or the
thread's own CPU time (which excludes the time it was descheduled) do not drift as much.
Each estimator is registered (role ``estimator``); the timing protocol names one, which
drives the adaptive repeat loop and becomes the stored ``latency_ms`` the cost models
use, and every estimator's value is kept in the measurement's evidence so they can be
compared on the same data (``bench/profile_under_load.py``).

An estimator takes the wall-clock samples (ms per call, one per repeat) and, for
host-timed single-thread runs, the thread CPU time per call of the same repeats (None
otherwise: a GPU timed with events, or several threads), and returns ms per call.
"""
from __future__ import annotations

import statistics
from typing import Callable, Optional, Sequence

from hwnas.registry import register

Estimator = Callable[[Sequence[float], Optional[Sequence[float]]], float]

#: A repeat is clean when its thread ran for at least this share of its wall time.
CLEAN_SHARE = 0.95


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (0..100) of a non-empty sequence."""
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@register("estimator", "median")
def median(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """Median of the wall-clock samples (hwnas before 0.x; no protection from load)."""
    return statistics.median(wall)


@register("estimator", "min")
def minimum(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """Fastest repeat: interference only adds time, but one lucky repeat decides."""
    return min(wall)


@register("estimator", "p10")
def p10(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """10th percentile of the wall-clock samples: near the minimum, less luck-dependent."""
    return percentile(wall, 10)


@register("estimator", "p25")
def p25(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """25th percentile of the wall-clock samples."""
    return percentile(wall, 25)


@register("estimator", "clean")
def clean(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """Median of the clean repeats (thread on the CPU >= 95% of the repeat); the
    minimum when none is clean; the median where CPU time is not measured."""
    if not cpu:
        return statistics.median(wall)
    ok = [w for w, c in zip(wall, cpu) if w > 0 and c >= CLEAN_SHARE * w]
    return statistics.median(ok) if ok else min(wall)


@register("estimator", "cpu")
def cpu_median(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """Median thread CPU time per call: the time the thread was descheduled is not in
    it; the median of the wall samples where CPU time is not measured."""
    return statistics.median(cpu) if cpu else statistics.median(wall)


@register("estimator", "cpu_p10")
def cpu_p10(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """10th percentile of the thread CPU time per call (p10 of wall without CPU time)."""
    return percentile(cpu, 10) if cpu else percentile(wall, 10)


@register("estimator", "cpu_min")
def cpu_min(wall: Sequence[float], cpu: Sequence[float] | None = None) -> float:
    """Least thread CPU time per call of any repeat (the minimum without CPU time)."""
    return min(cpu) if cpu else min(wall)
