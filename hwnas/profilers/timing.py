"""The timing protocol: an explicit, typed object stored with every result.

Why adaptive: fixed repeat counts either waste minutes on slow blocks or give noisy
medians for fast ones. The protocol repeats until the running estimate (of the
protocol's ``estimator``) is stable (the last few agree within ``rel_tol``) or the
per-item time budget is spent, and always keeps the raw per-call samples so a cost
model can look at the spread. Each repeat also records the timed thread's CPU time:
on a busy machine the thread is descheduled part of the time, which shows as CPU time
below wall time — the evidence of interference, and the basis of the ``cpu`` estimator.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from hwnas import registry
from hwnas.errors import ConfigError, HwnasError

#: The stored summary cost models use (chosen on real data, see bench/profile_under_load.py).
DEFAULT_ESTIMATOR = "cpu"


@dataclass(frozen=True)
class TimingProtocol:
    """How one item is timed.

    A *repeat* runs the callable ``number`` times back to back (``number`` grows so a
    repeat lasts at least ``min_time_ms``, which keeps timer resolution and Python
    overhead out of fast kernels); its sample is the mean time per call in ms.

    ``sessions`` independent preparations (a fresh runtime session / module each) are
    timed one after another and their samples pooled. Why: on this kind of CPU the
    same network timed in two sessions differs by ~2% (median) and up to 2x at worst
    (allocator placement, a bad start), while repeats inside one session agree to ~1%;
    the pooled median of three sessions outvotes one bad session.
    """

    warmup: int = 3
    min_repeats: int = 5
    max_repeats: int = 50
    number: int = 1
    min_time_ms: float = 2.0
    threads: int = 1
    batch: int = 1
    time_budget_s: float = 5.0
    rel_tol: float = 0.02
    stable_window: int = 3
    sessions: int = 3
    estimator: str = DEFAULT_ESTIMATOR

    def __post_init__(self) -> None:
        for name in ("min_repeats", "max_repeats", "number", "threads", "batch", "stable_window", "sessions"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"timing.{name}: must be an integer >= 1, got {v!r}")
        if self.warmup < 0:
            raise ConfigError(f"timing.warmup: must be >= 0, got {self.warmup}")
        if self.max_repeats < self.min_repeats:
            raise ConfigError(f"timing.max_repeats: must be >= min_repeats ({self.min_repeats}), got {self.max_repeats}")
        for name in ("min_time_ms", "time_budget_s", "rel_tol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or \
                    (v == 0 and name != "min_time_ms"):
                raise ConfigError(f"timing.{name}: must be a finite number {'>= 0' if name == 'min_time_ms' else '> 0'}"
                                  f", got {v!r}")
        try:
            registry.get("estimator", self.estimator)
        except HwnasError as exc:
            raise ConfigError(f"timing.estimator: {exc}") from None

    def item_seconds(self) -> float:
        """How long timing one item may take by design (every session may use its
        whole time budget); a per-item timeout shorter than this cuts healthy items off."""
        return self.sessions * self.time_budget_s

    def estimate(self, wall_ms: list[float], cpu_ms: list[float] | None) -> float:
        return float(registry.get("estimator", self.estimator)(wall_ms, cpu_ms or None))

    def to_dict(self) -> dict[str, Any]:
        """Canonical form stored in Measurement.settings (and hashed for resume)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TimingProtocol":
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"timing: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**dict(data))


@dataclass
class TimingResult:
    """Raw samples (ms per call) and how the run ended."""

    samples_ms: list[float] = field(default_factory=list)
    #: thread CPU time per call of each repeat (host-timed runs; empty otherwise)
    cpu_ms: list[float] = field(default_factory=list)
    number: int = 1
    stable: bool = False
    wall_s: float = 0.0
    total_calls: int = 0  # every call made, warm-up and calibration included (energy per call)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def calls(self) -> int:
        return self.number * len(self.samples_ms)


def _stable(values: list[float], window: int, tol: float) -> bool:
    if len(values) < window:
        return False
    last = values[-window:]
    ref = last[-1]
    return ref > 0 and all(abs(m - ref) <= tol * ref for m in last)


def _calibrate(one_repeat: Callable[[int], float], protocol: TimingProtocol, cpu: list[float]) -> tuple[int, float]:
    """Grow ``number`` until one repeat lasts at least min_time_ms; the last repeat
    (and its CPU sample) is the first sample."""
    number = protocol.number
    first = one_repeat(number)
    while first * 1000.0 < protocol.min_time_ms and number < 1_000_000:
        per_call = max(first / number, 1e-7)
        number = max(number * 2, int(protocol.min_time_ms / 1000.0 / per_call) + 1)
        cpu.clear()
        first = one_repeat(number)
    return number, first


def measure(call: Callable[[], Any], protocol: TimingProtocol, *,
            sync: Callable[[], None] | None = None,
            timer: Callable[[], float] = time.perf_counter,
            repeat_timer: Callable[[Callable[[], Any], int], float] | None = None,
            cpu_timer: Callable[[], float] | None = None) -> TimingResult:
    """Time ``call`` under ``protocol``.

    ``sync`` is called before reading the clock (device synchronisation for GPUs).
    ``repeat_timer(call, number)`` may replace the host clock for one repeat and
    return its total time in seconds (torch uses CUDA events this way).
    ``cpu_timer`` (``time.thread_time`` for host-timed, single-thread runs) is read
    around every repeat too; its samples feed CPU-based estimators and the evidence.
    """
    sync = sync or (lambda: None)
    start = timer()
    calls = [0]
    cpu: list[float] = []

    def one_repeat(n: int) -> float:
        calls[0] += n
        if repeat_timer is not None:
            return repeat_timer(call, n)
        sync()
        c0 = cpu_timer() if cpu_timer is not None else 0.0
        t0 = timer()
        for _ in range(n):
            call()
        sync()
        t1 = timer()
        if cpu_timer is not None:
            cpu.append((cpu_timer() - c0) * 1000.0 / n)
        return t1 - t0

    for _ in range(protocol.warmup):
        call()
    calls[0] += protocol.warmup
    sync()
    number, first = _calibrate(one_repeat, protocol, cpu)
    res = TimingResult(number=number, cpu_ms=cpu)
    res.samples_ms.append(first * 1000.0 / number)
    estimates: list[float] = [protocol.estimate(res.samples_ms, cpu)]
    while len(res.samples_ms) < protocol.max_repeats:
        enough = len(res.samples_ms) >= protocol.min_repeats
        if enough and _stable(estimates, protocol.stable_window, protocol.rel_tol):
            res.stable = True
            break
        if enough and timer() - start > protocol.time_budget_s:
            break
        res.samples_ms.append(one_repeat(number) * 1000.0 / number)
        estimates.append(protocol.estimate(res.samples_ms, cpu))
    else:
        res.stable = _stable(estimates, protocol.stable_window, protocol.rel_tol)
    res.wall_s = timer() - start
    res.total_calls = calls[0]
    return res
