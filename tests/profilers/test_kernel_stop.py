"""The kernel job's stopping rule: a block family judged accurate on held-out networks is
no longer drawn, and the job ends early once every family it draws is accurate."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hwnas.errors import ConfigError

PROTO = dict(warmup=1, min_repeats=3, max_repeats=3, min_time_ms=0.2, time_budget_s=0.2, sessions=1)
#: only two block families, so a tiny job judges both
TWO = {"plain": 1.0, "dwsep": 1.0}


def _store(tmp_path: Path, rules: Any) -> Any:
    from hwnas.nn.kernels.rules import KIND
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.store import Store

    st = Store(tmp_path / "k.sqlite")
    dev_id = st.add_device(device_fingerprint("cpu", 1))
    st.add_rules(dev_id, "onnxruntime", KIND, rules.to_dict(), {"test": True})
    return st


def _sampling(rounds: int, stop: Any, weights: dict[str, float]) -> Any:
    from hwnas.nn.kernels.synthetic import BLOCKS
    from hwnas.profilers.kernel_job import KernelSampling

    only = {b: weights.get(b, 0.0) for b in BLOCKS}
    return KernelSampling(rounds=rounds, max_macs=1e6, max_resolution=16, weights=only, stop=stop)


def _blocks_by_round(st: Any) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for _, arch in st.networks("kernels"):
        out.setdefault(int(arch["round"]), set()).update(arch["blocks"])
    return out


@pytest.mark.timeout(300)
def test_an_accurate_family_is_no_longer_drawn(tmp_path: Path, measured_rules) -> None:
    from hwnas.profilers.kernel_job import StopRule, profile_kernels
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol

    def advisor(store, dev_id, backend, settings, rnd, stop):  # type: ignore[no-untyped-def]
        assert stop.mape == 0.05
        return {"weights": {"plain": 0.0, "dwsep": 2.0},
                "families": {"plain": {"networks": 30, "mape": 0.01, "accurate": True},
                             "dwsep": {"networks": 30, "mape": 0.20, "accurate": False}}}

    with _store(tmp_path, measured_rules) as st:
        s = profile_kernels(st, ProfileRequest(networks=6, seed=0, protocol=TimingProtocol(**PROTO),
                                               show_progress=False),
                            _sampling(2, StopRule(0.05, 20), TWO), advisor=advisor)
        by_round = _blocks_by_round(st)
    assert s.complete and not s.stopped_early and s.rounds_run == 2 and s.measured == 6
    assert "plain" in by_round[0]                       # drawn before it was judged
    assert by_round[1] == {"dwsep"}                     # judged accurate: no longer drawn
    assert s.families["plain"]["stopped_round"] == 1 and s.families["dwsep"]["stopped_round"] is None
    # a rerun resumes: each begun round keeps the advice its networks were drawn with (the
    # advisor is not asked again), and measured networks are not even generated again
    import hwnas.profilers.kernel_job as kj

    def no_draw(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("a measured network was generated again, or the advisor asked again")

    with _store(tmp_path, measured_rules) as st, pytest.MonkeyPatch.context() as mp:
        mp.setattr(kj, "sample_network", no_draw)
        again = profile_kernels(st, ProfileRequest(networks=6, seed=0, protocol=TimingProtocol(**PROTO),
                                                   show_progress=False),
                                _sampling(2, StopRule(0.05, 20), TWO), advisor=no_draw)
    assert again.complete and again.measured == 0 and again.skipped == 6 and again.advice_s == 0
    assert again.families == s.families and again.weights == s.weights


@pytest.mark.timeout(300)
def test_the_job_ends_early_when_every_family_is_accurate(tmp_path: Path, measured_rules) -> None:
    """The real advisor (out-of-fold fits) with a loose rule judges both families accurate
    as soon as each was seen in two held-out networks (after round 0 unless a family was
    drawn only once): the last rounds are never drawn; a strict rule (0) never stops."""
    from hwnas.cost_models.kernel_fit import advise_round
    from hwnas.profilers.kernel_job import StopRule, profile_kernels
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol

    req = ProfileRequest(networks=30, seed=5, protocol=TimingProtocol(**PROTO), show_progress=False)
    with _store(tmp_path, measured_rules) as st:
        s = profile_kernels(st, req, _sampling(3, StopRule(100.0, 2), TWO), advisor=advise_round)
        assert s.complete and s.stopped_early and s.rounds_run < 3 and s.measured == 10 * s.rounds_run
        assert set(_blocks_by_round(st)) == set(range(s.rounds_run))
        assert {b for b, f in s.families.items() if f["accurate"]} == {"plain", "dwsep"}
        assert all(f["networks"] >= 2 and 0 <= f["mape"] <= 100 for f in s.families.values())
        strict = advise_round(st, st.find_device("cpu")["id"], "onnxruntime", {}, s.rounds_run,
                              stop=StopRule(0.0, 2))
    assert strict["families"] and not any(f["accurate"] for f in strict["families"].values())
    assert all(w > 0 for w in strict["weights"].values())


@pytest.mark.timeout(300)
def test_a_new_sampler_version_draws_its_networks_again(tmp_path: Path, measured_rules) -> None:
    """A stored network drawn by another sampler version came from another stream: a rerun
    with the same seed must generate and measure its own draw, not skip it as measured."""
    import hwnas.profilers.kernel_job as kj
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol

    calls: list[int] = []
    real = kj.sample_network

    def counting(seed, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(seed)
        return real(seed, *a, **k)

    req = ProfileRequest(networks=2, seed=4, protocol=TimingProtocol(**PROTO), show_progress=False)
    with _store(tmp_path, measured_rules) as st, pytest.MonkeyPatch.context() as mp:
        mp.setattr(kj, "sample_network", counting)
        first = kj.profile_kernels(st, req, replace(_sampling(1, kj.StopRule(), TWO), adaptive=False))
        same = kj.profile_kernels(st, req, replace(_sampling(1, kj.StopRule(), TWO), adaptive=False))
        assert first.measured == 2 and same.skipped == 2 and len(calls) == 2   # same version: not even drawn
        mp.setattr(kj, "SAMPLER_VERSION", kj.SAMPLER_VERSION + 1)
        kj.profile_kernels(st, req, replace(_sampling(1, kj.StopRule(), TWO), adaptive=False))
    assert len(calls) == 4                                                     # another version: drawn again


def test_stop_rule_is_checked() -> None:
    from hwnas.profilers.kernel_job import StopRule

    with pytest.raises(ConfigError, match="stop mape"):
        StopRule(-0.1, 20)
    with pytest.raises(ConfigError, match="min_networks"):
        StopRule(0.04, 1)
