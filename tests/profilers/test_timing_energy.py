"""Timing protocol, RAPL energy with a fake powercap tree, device fingerprint."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.errors import ConfigError
from hwnas.profilers import energy
from hwnas.profilers.fingerprint import cpu_model, device_fingerprint
from hwnas.profilers.timing import TimingProtocol, measure


class FakeClock:
    """Each call of the timed function advances time by a scripted amount."""

    def __init__(self, costs: list[float]) -> None:
        self.now = 0.0
        self.costs = costs
        self.calls = 0

    def timer(self) -> float:
        return self.now

    def call(self) -> None:
        self.now += self.costs[min(self.calls, len(self.costs) - 1)]
        self.calls += 1


def test_constant_cost_is_stable_and_exact() -> None:
    clk = FakeClock([0.001])  # 1 ms per call
    p = TimingProtocol(warmup=2, min_repeats=4, max_repeats=20, min_time_ms=0.0, time_budget_s=10)
    res = measure(clk.call, p, timer=clk.timer)
    assert res.stable and len(res.samples_ms) >= 4
    assert res.median_ms == pytest.approx(1.0)
    assert res.total_calls == clk.calls


def test_number_grows_to_reach_min_time() -> None:
    clk = FakeClock([1e-5])  # 10 us per call, min 1 ms per repeat -> >= 100 calls
    res = measure(clk.call, TimingProtocol(warmup=0, min_time_ms=1.0), timer=clk.timer)
    assert res.number >= 100
    assert res.median_ms == pytest.approx(0.01)


def test_noisy_cost_runs_until_budget_or_max() -> None:
    costs = [0.001 * (1 + 0.2 * i) for i in range(10_000)]  # drifting: the median never settles
    clk = FakeClock(costs)
    p = TimingProtocol(warmup=0, min_repeats=3, max_repeats=15, min_time_ms=0.0, time_budget_s=100, rel_tol=0.001)
    res = measure(clk.call, p, timer=clk.timer)
    assert len(res.samples_ms) == 15 and not res.stable


def test_budget_stops_repeats() -> None:
    clk = FakeClock([0.5 * (1 + (i % 2)) for i in range(1000)])
    p = TimingProtocol(warmup=0, min_repeats=3, max_repeats=50, min_time_ms=0.0, time_budget_s=2.0, rel_tol=1e-6)
    res = measure(clk.call, p, timer=clk.timer)
    assert 3 <= len(res.samples_ms) < 10


def test_protocol_validation_and_roundtrip() -> None:
    p = TimingProtocol(threads=2, batch=4)
    assert TimingProtocol.from_dict(p.to_dict()) == p
    with pytest.raises(ConfigError):
        TimingProtocol(min_repeats=5, max_repeats=2)
    with pytest.raises(ConfigError):
        TimingProtocol.from_dict({"bogus": 1})


def _domain(root: Path, name: str, value: int, max_range: int) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{value}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def test_rapl_sums_packages_and_handles_wraparound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "POWERCAP_ROOT", tmp_path)
    p0 = _domain(tmp_path, "intel-rapl:0", 1_000_000, 10_000_000)
    p1 = _domain(tmp_path, "intel-rapl:1", 9_500_000, 10_000_000)
    _domain(tmp_path, "intel-rapl:0:0", 5, 10_000_000)  # sub-domain: must not be counted
    meter = energy.EnergyMeter("cpu")
    assert meter.source == "rapl"
    meter.start()
    (p0 / "energy_uj").write_text("3000000\n")   # +2 J
    (p1 / "energy_uj").write_text("500000\n")    # wrapped: +1 J
    r = meter.stop()
    assert r.energy_j == pytest.approx(3.0) and r.source == "rapl"


def test_rapl_unreadable_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "POWERCAP_ROOT", tmp_path)
    assert energy.EnergyMeter("cpu").stop().energy_j is None  # no domains at all
    d = _domain(tmp_path, "intel-rapl:0", 100, 1000)
    meter = energy.EnergyMeter("cpu")
    meter.start()
    (d / "energy_uj").write_text("garbage")
    r = meter.stop()
    assert r.energy_j is None and r.source is None


def test_fingerprint_reflects_threads_and_cpu(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n")
    assert cpu_model(info) == "Test CPU 9000"
    d1, d2 = device_fingerprint("cpu", 1), device_fingerprint("cpu", 2)
    assert d1.fingerprint != d2.fingerprint and d1.threads == 1
    assert "torch" in dict(d1.runtimes) and "onnxruntime" in dict(d1.runtimes)


def test_sessions_prepare_afresh_and_pool_samples() -> None:
    """Each session is a new preparation; the samples of all sessions are pooled."""
    from hwnas import registry
    from hwnas.primitives import Primitive

    backend = registry.build("backend", "torch")
    prepared = []
    real_prepare = backend.prepare

    def counting_prepare(target, batch=1):
        prepared.append(target)
        return real_prepare(target, batch)

    backend.prepare = counting_prepare
    p = TimingProtocol(warmup=1, min_repeats=3, max_repeats=3, min_time_ms=0.1, sessions=3)
    res = backend.measure(Primitive("conv", 4, 8, 8, 8, kernel=3, act="relu"), p, with_energy=False)
    assert len(prepared) == 3
    assert len(res.session_medians_ms) == 3 and len(res.samples_ms) == 9
    assert min(res.session_medians_ms) <= sorted(res.samples_ms)[4] <= max(res.session_medians_ms)
    with pytest.raises(ConfigError, match="timing.sessions"):
        TimingProtocol(sessions=0)
