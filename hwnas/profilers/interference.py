"""Evidence of interference while an item is timed, and the decision to flag it.

Why: on a shared machine other processes take the CPU from the timed thread (it waits
while they run) or from the whole virtual machine (the hypervisor "steals" it), and a
latency measured then is too long by an unknown amount. Three kinds of evidence are
gathered per item, pyperf-style: per repeat, the timed thread's CPU time against wall
time (a thread that was descheduled shows less CPU than wall time); around the item,
the load average, the CPU time stolen by the hypervisor and the CPU time other
processes used (from /proc/stat); and in the samples, outlier repeats. The evidence is
stored with the measurement; the measurement is *flagged* when its value cannot be
trusted: its sessions disagree, or its wall time is inflated well beyond its CPU time
(so the estimator lets the load through), or the hypervisor stole much of the CPU.
"""
from __future__ import annotations

import math
import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hwnas import registry
from hwnas.profilers.estimators import CLEAN_SHARE

PROC_STAT = Path("/proc/stat")
PROC_LOADAVG = Path("/proc/loadavg")
#: Per-session estimates further apart than this (max/min - 1) flag a measurement.
SESSION_SPREAD = 0.05
#: A stored value above its thread CPU time by more than this flags it (load let through).
INFLATION = 0.05
#: More than this share of the machine's CPU time stolen by the hypervisor flags it.
STEAL = 0.10
#: Robust z-score above which a repeat is an outlier (median + 5 scaled MADs).
OUTLIER_Z = 5.0
#: A job's machine counts as busy only on evidence: the timed thread's median CPU share of
#: the flagged rows' repeats below this (it was descheduled), ...
BUSY_SHARE = 0.90
#: ... or other processes using more than this share of the machine's CPU (median over rows),
BUSY_OTHERS = 0.25
#: ... or a load average above this many runnable tasks per core (median over rows).
BUSY_LOAD_PER_CORE = 1.0


@dataclass(frozen=True)
class Snapshot:
    """System counters at one moment."""

    wall: float
    load1: float | None
    jiffies: tuple[int, ...] | None  # the aggregate "cpu" line of /proc/stat
    own_cpu: float                   # this process's user + system seconds
    ivcsw: int                       # this process's involuntary context switches


def snapshot() -> Snapshot:
    """Read the counters (cheap: two small /proc files); None where unreadable."""
    try:
        load1: float | None = float(PROC_LOADAVG.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        load1 = None
    try:
        first = PROC_STAT.read_text().splitlines()[0].split()
        jiffies: tuple[int, ...] | None = tuple(int(x) for x in first[1:9]) if first[0] == "cpu" else None
    except (OSError, ValueError, IndexError):
        jiffies = None
    t = os.times()
    return Snapshot(time.monotonic(), load1, jiffies, t.user + t.system,
                    resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)


def between(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """Load before/after, and the shares of the machine's CPU time that the hypervisor
    stole and that other processes used between two snapshots."""
    out: dict[str, Any] = {"load": [a.load1, b.load1], "preemptions": b.ivcsw - a.ivcsw}
    if a.jiffies is not None and b.jiffies is not None:
        d = [y - x for x, y in zip(a.jiffies, b.jiffies)]
        total = sum(d)
        if total > 0:
            # user nice system idle iowait irq softirq steal
            busy = total - d[3] - d[4] - d[7]
            own = (b.own_cpu - a.own_cpu) * os.sysconf("SC_CLK_TCK")
            out["steal"] = round(d[7] / total, 4)
            out["others_cpu"] = round(max(0.0, busy - own) / total, 4)
    return out


def outliers(samples: Sequence[float]) -> int:
    """Repeats far above the rest (median + 5 scaled MADs): the visible hits of load."""
    if len(samples) < 3:
        return 0
    med = statistics.median(samples)
    mad = statistics.median(abs(x - med) for x in samples) * 1.4826
    if mad <= 0:
        return 0
    return sum(1 for x in samples if (x - med) / mad > OUTLIER_Z)


def estimates(wall: Sequence[float], cpu: Sequence[float] | None) -> dict[str, float]:
    """Every registered estimator's value on the same samples (compared side by side)."""
    return {e.name: _sig(float(e.obj(wall, cpu or None))) for e in registry.list("estimator")}


def _sig(x: float) -> float:
    """Six significant digits: enough for any timer, half the JSON."""
    return float(f"{x:.6g}")


def evidence(wall: list[float], cpu: list[float], session_estimates: list[float], estimate: float,
             system: dict[str, Any]) -> dict[str, Any]:
    """The evidence stored with one measurement, and its ``flags`` (empty = trusted)."""
    ev: dict[str, Any] = {**system, "repeats": len(wall), "outliers": outliers(wall),
                          "estimates": estimates(wall, cpu), "session_estimates_ms": session_estimates}
    flags = []
    if cpu and len(cpu) == len(wall):
        shares = [c / w for c, w in zip(cpu, wall) if w > 0]
        ev["cpu_share"] = round(statistics.median(shares), 4) if shares else None
        ev["clean"] = sum(1 for s in shares if s >= CLEAN_SHARE)
        ev["cpu_ms"] = [_sig(c) for c in cpu]
        ref = statistics.median(cpu)
        if ref > 0 and estimate > ref * (1 + INFLATION):
            flags.append(f"preempted ({estimate / ref - 1:.0%} above CPU time)")
    good = [e for e in session_estimates if e > 0 and math.isfinite(e)]
    if len(good) >= 2 and max(good) / min(good) - 1 > SESSION_SPREAD:
        flags.append(f"sessions disagree ({max(good) / min(good) - 1:.0%})")
    if (system.get("steal") or 0.0) > STEAL:
        flags.append(f"steal ({system['steal']:.0%})")
    ev["flags"] = flags
    return ev


def busy_evidence(flagged_shares: Sequence[float], others_cpu: Sequence[float], loads: Sequence[float],
                  steal_flags: int, cores: int) -> list[str]:
    """What says the machine was busy while a job ran (empty: nothing does).

    Why: flagged rows alone do not make a busy machine: sessions of a runtime disagree by
    several percent on an idle machine too (allocation, caches, frequency). Only a timed
    thread that lost CPU (its CPU share of the flagged repeats), other processes' CPU
    use, a high load average or hypervisor steal are evidence of competition.
    """
    out = []
    if flagged_shares and statistics.median(flagged_shares) < BUSY_SHARE:
        out.append(f"the timed thread got {statistics.median(flagged_shares):.0%} of the CPU in flagged repeats")
    if others_cpu and statistics.median(others_cpu) > BUSY_OTHERS:
        out.append(f"other processes used {statistics.median(others_cpu):.0%} of the machine's CPU")
    if loads and cores > 0 and statistics.median(loads) > BUSY_LOAD_PER_CORE * cores:
        out.append(f"load average {statistics.median(loads):.1f} on {cores} cores")
    if steal_flags:
        out.append(f"the hypervisor stole CPU time during {steal_flags} measurements")
    return out
