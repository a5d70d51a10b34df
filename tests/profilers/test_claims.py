"""Concurrent profilers on one store: each item is measured exactly once, and the claim
of a dead or stalled profiler is taken over."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hwnas import registry
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.runner import ProfileJob
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store, settings_hash
from hwnas.store.claims import BUSY, CLAIMED, Claims, ItemKey, Owner

#: About 10 ms of (fake) timing per request, so two jobs really overlap.
SLOW = ["--warmup", "0", "--min-repeats", "100", "--max-repeats", "100", "--min-time-ms", "1", "--sessions", "1",
        "--time-budget", "1"]


def _profile_cmd(store: Path, networks: int = 40) -> list[str]:
    return [sys.executable, "-m", "hwnas.cli", "profile", "--space", "toy", "--backend", "fake", "--store", str(store),
            "--networks", str(networks), "--json", *SLOW]


def _rows(store: Path) -> list[tuple]:
    con = sqlite3.connect(store)
    try:
        return con.execute("SELECT kind, target, network, position FROM measurements").fetchall()
    finally:
        con.close()


def _assert_each_item_once(store: Path, n_networks: int) -> None:
    rows = _rows(store)
    space = registry.build("search_space", "toy")
    prims = Counter(r[1] for r in rows if r[0] == "primitive")
    nets = Counter(r[1] for r in rows if r[0] == "network")
    blocks = Counter((r[2], r[3]) for r in rows if r[0] == "block")
    assert set(prims) == {p.key for p in space.primitives()} and set(prims.values()) == {1}, prims.most_common(3)
    assert len(nets) == n_networks and set(nets.values()) == {1}, nets.most_common(3)
    assert len(blocks) == n_networks * (space.n + 1) and set(blocks.values()) == {1}
    assert len(rows) == len(prims) + n_networks * (space.n + 2)
    con = sqlite3.connect(store)
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # every claim released
    con.close()


def _has_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.slow
def test_two_profile_processes_measure_each_item_once(tmp_path: Path) -> None:
    store = tmp_path / "shared.sqlite"
    Store(store).close()
    # Hold the write lock until both processes have opened the store, so they start together.
    gate = sqlite3.connect(store, isolation_level=None)
    gate.execute("BEGIN IMMEDIATE")
    procs = [subprocess.Popen(_profile_cmd(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    while not all(_has_open(p.pid, store.resolve()) for p in procs):  # the test's timeout bounds this
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.05)
    gate.execute("ROLLBACK")
    gate.close()
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    _assert_each_item_once(store, 40)
    done = [json.loads(out)["backends"][0] for out, _ in outs]
    measured = sum(d["primitives"] + d["networks"] for d in done)
    n_items = len(registry.build("search_space", "toy").primitives()) + 40
    assert measured == n_items, json.dumps(done)  # between them, every item once
    assert all(d["primitives"] + d["networks"] + d["elsewhere"] + d["skipped"] == n_items for d in done)


@pytest.mark.slow
def test_four_processes_creating_one_store_store_each_item_once(tmp_path: Path) -> None:
    store = tmp_path / "new" / "created.sqlite"
    procs = [subprocess.Popen(_profile_cmd(store, 4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    _assert_each_item_once(store, 4)
    with Store(store) as st:
        assert len(st.devices()) == 1


@pytest.fixture
def job_parts(store_path: Path):
    space = registry.build("search_space", "toy", n=2, k=2)
    proto = TimingProtocol(warmup=0, min_repeats=3, max_repeats=3, min_time_ms=0.1, time_budget_s=0.5, sessions=1)

    def job(store: Store, primitives=None, **kw) -> ProfileJob:
        return ProfileJob(store, space, ProfileRequest(backends=("fake",), protocol=proto, show_progress=False, **kw),
                          primitives=primitives)
    return space, proto, job


def _key(st: Store, space, proto: TimingProtocol, target: str) -> ItemKey:
    settings = registry.build("backend", "fake").settings(proto)
    dev = st.devices()[0]["id"]
    return ItemKey(dev, "fake", settings_hash(settings), "primitive", target)


def _other(owner: str, pid: int | None = None, host: str | None = None) -> Owner:
    me = Owner.me()
    return Owner(owner, host or me.host, pid or me.pid, None if pid else me.started)


def test_claims_of_dead_and_expired_owners_are_taken_over(store_path: Path, job_parts) -> None:
    space, proto, job = job_parts
    prims = space.primitives()
    with Store(store_path) as st:
        job(store=st, primitives=prims[:1]).run()  # creates the device
        k_dead, k_remote = (_key(st, space, proto, p.key) for p in prims[1:3])
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True)
        dead = Claims(st, _other("dead-job", pid=int(gone.stdout)))
        assert dead.claim(k_dead, 3600, lambda: False) == CLAIMED
        remote = Claims(st, _other("remote-job", pid=1, host="another-host"))
        assert remote.claim(k_remote, -1, lambda: False) == CLAIMED  # its lease has run out
        mine = Claims(st)
        assert mine.claim(k_dead, 60, lambda: False) == CLAIMED  # a dead owner's claim is free at once
        mine.release_all()
        dead.held.clear()
        assert dead.claim(k_dead, 3600, lambda: False) == CLAIMED
        s = job(store=st, primitives=prims[:3]).run()
        assert s.backends[0].measured["primitive"] == 2 and s.backends[0].skipped["primitive"] == 1
        assert Counter(r["target"] for r in st.query(kind="primitive")) == {p.key: 1 for p in prims[:3]}
        m = Measurement("primitive", k_dead.target, "fake", registry.build("backend", "fake").settings(proto), (1.0,))
        assert dead.commit(k_dead, [m]) is None and remote.renew(k_remote, 60) is False  # stale owners store nothing
        assert st.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0


def test_a_job_waits_for_live_owners_and_takes_over_when_one_dies(store_path: Path, job_parts) -> None:
    space, proto, job = job_parts
    prims = space.primitives()
    settings = registry.build("backend", "fake").settings(proto)
    with Store(store_path) as st:
        job(store=st, primitives=prims[:1]).run()
        k_live, k_dying = (_key(st, space, proto, p.key) for p in prims[1:3])
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        try:
            assert Claims(st, _other("dying-job", pid=sleeper.pid)).claim(k_dying, 3600, lambda: False) == CLAIMED
            live = Claims(st, _other("live-job"))
            assert live.claim(k_live, 3600, lambda: False) == CLAIMED
            assert Claims(st).claim(k_live, 60, lambda: False) == BUSY
            pauses: list[int] = []

            def owners_finish() -> None:
                """The job waits: every item left is a live owner's. One commits, one dies."""
                pauses.append(len(st.query(kind="primitive")))
                if len(pauses) == 1:
                    live.commit(k_live, [Measurement("primitive", k_live.target, "fake", settings, (1.0,))])
                    sleeper.kill()
                    sleeper.wait()

            j = job(store=st, primitives=prims[:4])
            j.pause = owners_finish
            s = j.run()
        finally:
            sleeper.kill()
            sleeper.wait()
        assert pauses == [2]  # it waited once, after measuring prims[3] (prims[0] was stored before)
        b = s.backends[0]
        assert b.measured["primitive"] == 2 and b.elsewhere == 1  # prims[3] and the dead owner's item
        assert Counter(r["target"] for r in st.query(kind="primitive")) == {p.key: 1 for p in prims[:4]}


def test_deadline_stops_cleanly_and_a_rerun_resumes(store_path: Path, job_parts) -> None:
    space, _, job = job_parts
    with Store(store_path) as st:
        s = job(store=st, deadline_s=0).run()
        assert s.backends[0].left == len(space.primitives()) and not st.query()
        s = job(store=st).run()
        assert s.backends[0].measured["primitive"] == len(space.primitives()) and s.backends[0].left == 0
