"""The speed probe: fixed networks that are never a kernel job's, really timed here."""
from __future__ import annotations

import pytest

from hwnas.errors import ConfigError
from hwnas.profilers.kernel_job import net_seed
from hwnas.profilers.probe import PROBE_SEED0, ProbeRun, probe_networks, run_probe
from hwnas.profilers.timing import TimingProtocol


def test_the_probe_draws_the_same_networks_every_time() -> None:
    a = probe_networks(3, max_macs=2e7, max_resolution=64)
    b = probe_networks(3, max_macs=2e7, max_resolution=64)
    assert [p.data for p in a] == [p.data for p in b]
    assert len({p.data for p in a}) == 3 and [p.seed for p in a] == [PROBE_SEED0, PROBE_SEED0 + 1, PROBE_SEED0 + 2]


def test_probe_seeds_are_no_kernel_jobs_seeds() -> None:
    # the largest network seed a kernel job of seed < 100 draws (rounds < 10, < 100,000 networks a round)
    assert net_seed(99, 9, 99_999) < PROBE_SEED0


def test_the_probe_times_every_network(tmp_path) -> None:
    nets = probe_networks(2, max_macs=2e7, max_resolution=64)
    seen: list[int] = []
    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=4, min_time_ms=0.5, time_budget_s=0.5, sessions=1)
    run = run_probe(nets, protocol=proto, progress=lambda i, n: seen.append(i))
    assert seen == [1, 2] and len(run.ms) == 2 and all(v > 0 for v in run.ms)
    assert run.protocol["sessions"] == 1 and run.when[:2] == "20" and run.wall_s > 0
    assert ProbeRun.from_dict(run.to_dict()) == run


def test_a_bad_probe_record_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="speed probe record: expected seeds, ms, wall_s and when"):
        ProbeRun.from_dict({"seeds": [1], "ms": [0.5]})
    with pytest.raises(ConfigError, match="networks must be >= 1"):
        probe_networks(0)
