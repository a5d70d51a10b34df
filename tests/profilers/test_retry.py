"""Failed and flagged measurements are data but never final: a rerun can retry them,
and a timeout too short for the timing protocol is refused before anything is stored."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas import registry
from hwnas.cli import main
from hwnas.errors import ConfigError
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.runner import ProfileJob
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store


@pytest.mark.parametrize("timeout", ["0", "-1", "10"])
def test_a_timeout_shorter_than_the_protocol_needs_is_refused(tmp_path: Path, timeout: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    rc = main(["profile", "--space", "toy", "--backend", "fake", "--store", str(store), f"--timeout={timeout}"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "timeout" in err and "3 session(s) x time budget 5 s" in err
    assert not store.exists()  # refused before the store was touched
    with pytest.raises(ConfigError, match="shorter than the timing protocol"):
        ProfileJob(Store(":memory:"), registry.build("search_space", "toy"),
                   ProfileRequest(backends=("fake",), protocol=TimingProtocol(sessions=2, time_budget_s=1.0),
                                  timeout_s=1.5))


def _job(st: Store, **kw) -> ProfileJob:
    space = registry.build("search_space", "toy", n=3, k=2)
    proto = TimingProtocol(warmup=0, min_repeats=3, max_repeats=3, min_time_ms=0.1, time_budget_s=0.5, sessions=1)
    return ProfileJob(st, space, ProfileRequest(backends=("fake",), protocol=proto, networks=2, show_progress=False,
                                                **kw))


def _fail_newest(st: Store, row: dict, *, flagged: bool = False) -> None:
    """Append a newer row for the same item: a failure, or a flagged success."""
    dev = row["device_id"]
    kw = dict(network=row["network"], position=row["position"], versions=row["versions"])
    if flagged:
        m = Measurement(row["kind"], row["target"], row["backend"], row["settings"], (9.0,), flagged=True,
                        evidence={"flags": ["preempted (80% above CPU time)"]}, **kw)
    else:
        m = Measurement(row["kind"], row["target"], row["backend"], row["settings"], error="timeout: no result", **kw)
    st.add_measurement(dev, m)


def test_retry_failed_and_flagged_items(store_path: Path) -> None:
    with Store(store_path) as st:
        first = _job(st).run().backends[0]
        n_prims, n_rows = first.measured["primitive"], len(st.query())
        prim = st.query(kind="primitive")[0]
        block = st.query(kind="block")[3]
        _fail_newest(st, prim)
        _fail_newest(st, block)
        skipped = _job(st).run().backends[0]  # a plain rerun keeps failures as they are
        assert skipped.stored() == 0 and skipped.skipped == {"primitive": n_prims, "network": 2}
        retried = _job(st, retry_failed=True).run().backends[0]
        # the failed primitive, and the network whose block failed (end to end and every block again)
        assert retried.measured["primitive"] == 1 and retried.measured["network"] == 1
        assert retried.measured["block"] == len(st.network(block["network"]).nodes)
        newest = {(r["kind"], r["target"], r["network"], r["position"]): r for r in st.query(latest=True)}
        assert all(r["error"] is None for r in newest.values())
        assert _job(st, retry_failed=True).run().backends[0].stored() == 0  # nothing left to retry
        # a flagged row is retried only when asked
        target = st.query(kind="primitive")[1]["target"]
        _fail_newest(st, st.query(kind="primitive")[1], flagged=True)
        assert _job(st, retry_failed=True).run().backends[0].stored() == 0
        again = _job(st, retry_flagged=True).run().backends[0]
        assert again.measured["primitive"] == 1 and again.stored() == 1
        assert not st.query(kind="primitive", target=target, latest=True)[0]["flagged"]
        # nothing stored was touched: every run only appended
        assert len(st.query()) == n_rows + 2 + 1 + (1 + retried.measured["block"]) + 1 + 1


def test_cli_retry_failed_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    args = ["profile", "--space", "toy", "--space-opt", "n=2", "--space-opt", "k=2", "--backend", "fake", "--store",
            str(store), "--sessions", "1", "--time-budget", "0.5", "--min-repeats", "3", "--max-repeats", "3"]
    assert main(args) == 0
    with Store(store) as st:
        _fail_newest(st, st.query(kind="primitive")[0])
    capsys.readouterr()
    assert main(args + ["--retry-failed", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backends"][0]["primitives"] == 1  # the one failed row, measured again
