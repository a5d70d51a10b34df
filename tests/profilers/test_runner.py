"""The profiling job: stores real measurements, resumes, survives failures, timeouts,
crashes and SIGKILL, and records networks end to end and block by block."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwnas.primitives import Primitive
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.runner import ProfileJob
from hwnas.store import Store

PLUGIN = '''
"""Test-only ops that misbehave inside the worker."""
import os
import time

from torch import nn

from hwnas import registry


@registry.register("op", "sleepy")
def sleepy(p):
    time.sleep(3600)
    return nn.Identity()


@registry.register("op", "crashy")
def crashy(p):
    os._exit(7)
'''


def _rows(path: Path) -> list[tuple]:
    con = sqlite3.connect(str(path))
    try:
        return con.execute("SELECT id, kind, target, network, position, created, error FROM measurements"
                           " ORDER BY id").fetchall()
    finally:
        con.close()


def test_job_stores_networks_and_blocks_then_resumes(store_path: Path, tiny_nb201, fast_protocol) -> None:
    with Store(store_path) as st:
        s1 = ProfileJob(st, tiny_nb201, ProfileRequest(protocol=fast_protocol, networks=2, show_progress=False)).run()
        b = s1.backends[0]
        assert b.measured["primitive"] == len(tiny_nb201.primitives()) and b.measured["network"] == 2
        nets = st.networks("nb201")
        assert len(nets) == 2 and nets[0][1] is not None  # arch stored
        net = nets[0][0]
        blocks = st.query(kind="block", network=net.hash)
        assert sorted(r["position"] for r in blocks) == list(range(len(net.nodes)))
        assert all(r["median_ms"] > 0 and r["samples"] for r in blocks if r["error"] is None)
        e2e = st.query(kind="network", target=net.hash)
        assert len(e2e) == 1 and e2e[0]["median_ms"] > 0
        assert e2e[0]["settings"]["timing"] == fast_protocol.to_dict()
        # the evidence of how it was taken goes with it; the stored value is the protocol's estimator
        ev = e2e[0]["evidence"]
        assert len(ev["cpu_ms"]) == len(e2e[0]["samples"]) == ev["repeats"] and 0 < ev["cpu_share"] <= 1.05
        assert e2e[0]["latency_ms"] == pytest.approx(ev["estimates"][fast_protocol.estimator], rel=1e-4)
        assert set(ev) >= {"load", "estimates", "flags", "outliers", "session_estimates_ms"}
        assert e2e[0]["flagged"] == int(bool(ev["flags"]))
        n_before = len(st.query())
        s2 = ProfileJob(st, tiny_nb201, ProfileRequest(protocol=fast_protocol, networks=2, show_progress=False)).run()
        assert s2.backends[0].measured == {"primitive": 0, "network": 0, "block": 0}
        assert s2.backends[0].skipped == {"primitive": len(tiny_nb201.primitives()), "network": 2}
        assert len(st.query()) == n_before


@pytest.mark.timeout(240)  # the sleeper sleeps an hour: a job that waited for it would fail here
def test_failures_timeouts_and_crashes_are_stored(store_path: Path, tmp_path: Path, tiny_nb201, fast_protocol,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hwnas_test_badops.py").write_text(PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    good = Primitive("conv", 4, 4, 8, 8, kernel=3)
    items = [Primitive("unknown_op", 4, 4, 8, 8), Primitive("sleepy", 4, 4, 8, 8), good,
             Primitive("crashy", 4, 4, 8, 8), Primitive("conv", 4, 8, 8, 8, kernel=1)]
    with Store(store_path) as st:
        s = ProfileJob(st, tiny_nb201, ProfileRequest(protocol=fast_protocol, timeout_s=4.0, imports=("hwnas_test_badops",),
                                                      show_progress=False), primitives=items).run()
        by_target = {r["target"]: r for r in st.query(kind="primitive")}
        assert "unknown" in by_target["unknown_op c4>4 8x8 k1 s1"]["error"]
        assert by_target["sleepy c4>4 8x8 k1 s1"]["error"].startswith("timeout")
        assert by_target["crashy c4>4 8x8 k1 s1"]["error"].startswith("crash")
        assert by_target[good.key]["error"] is None and by_target[good.key]["median_ms"] > 0
        assert by_target["conv c4>8 8x8 k1 s1"]["error"] is None  # the job went on after the crash
        assert s.backends[0].failed["primitive"] == 3 and s.backends[0].measured["primitive"] == 2


#: ``hwnas profile`` whose sixth item stops before it is committed, says so and waits there
#: (its lease held) until the test kills it: a SIGKILL mid-item at a known place.
HOLD_AT_SIXTH = """
import sys
from pathlib import Path

from hwnas.cli import main
from hwnas.profilers import jobs

real, done = jobs.LeasedItems.commit, []


def commit(self, item, rows):
    if len(done) == 5:
        Path(sys.argv[1]).write_text(item.key.target)
        sys.stdin.read()
    done.append(item.key.target)
    return real(self, item, rows)


jobs.LeasedItems.commit = commit
sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_mid_run_then_resume_does_not_remeasure(tmp_path: Path) -> None:
    store, holding = tmp_path / "kill.sqlite", tmp_path / "holding"
    args = ["profile", "--space", "mbv2", "--space-opt", "resolution=32", "--space-opt", "width=0.25", "--store",
            str(store), "--networks", "2", "--warmup", "1", "--min-repeats", "8", "--max-repeats", "8",
            "--min-time-ms", "4", "--time-budget", "1", "--sessions", "1"]
    proc = subprocess.Popen([sys.executable, "-c", HOLD_AT_SIXTH, str(holding), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not holding.exists():  # bounded by the test's timeout
            assert proc.poll() is None, "the job ended before its sixth item"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-item: measured, not committed, its lease held
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdin.close()  # type: ignore[union-attr]
    con = sqlite3.connect(store)
    try:
        assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 1  # the dead job's lease
    finally:
        con.close()
    cmd = [sys.executable, "-m", "hwnas.cli", *args]
    before = _rows(store)
    assert len(before) == 5 and all(row[1] == "primitive" for row in before)  # five items, one row each
    r = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    after = _rows(store)
    assert after[:len(before)] == before  # nothing stored was touched or re-measured
    prims = [row for row in after if row[1] == "primitive"]
    assert len(prims) == len({row[2] for row in prims})  # each primitive measured once
    assert len([row for row in after if row[1] == "network"]) == 2
    assert all(row[6] is None for row in after)
    assert holding.read_text() in {row[2] for row in after[5:]}  # the killed item, measured by the resumed job
