"""Contract suite of the ``power_format`` role (see hwnas/profilers/ingest/power.py).

Energy per inference is the integral of a power log over a run's window, so the log
must come back as a time series in order, in watts, finite and non-negative; bad
files must be refused as user errors naming the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.profilers.ingest.power import PowerLog
from hwnas.testing._common import component, example, expect, finite
from hwnas.testing._files import check_rejects

ROLE = "power_format"


def check(name: str, tmp_dir: Path | Any) -> None:
    """Parse the example into an ordered, finite series; reject bad files."""
    tmp_dir = Path(tmp_dir)
    cls = component(ROLE, name)
    got = example(ROLE, name, cls, tmp_dir)
    expect(isinstance(got, tuple) and len(got) == 2, ROLE, name, f"example() must return (path, rails), got {got!r}")
    path, rails = Path(got[0]), got[1]
    log = cls.parse(path, rails)
    expect(isinstance(log, PowerLog), ROLE, name, "parse() must return a PowerLog")
    expect(len(log.times) == len(log.watts) >= 2, ROLE, name, "a power log needs >= 2 samples, one time per watt")
    expect(finite(log.times) and all(b >= a for a, b in zip(log.times, log.times[1:])), ROLE, name,
           "times must be finite and non-decreasing")
    expect(finite(log.watts) and min(log.watts) >= 0, ROLE, name, f"watts must be finite >= 0, got {log.watts[:4]}")
    expect(log.fmt == name, ROLE, name, f"PowerLog.fmt must be the registry name, got {log.fmt!r}")
    expect(isinstance(log.rails, list) and all(isinstance(r, str) for r in log.rails), ROLE, name,
           "PowerLog.rails must list the rails read")
    check_rejects(ROLE, name, lambda p: cls.parse(p, rails), tmp_dir)
