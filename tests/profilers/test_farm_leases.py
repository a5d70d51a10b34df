"""Defect 7: the device farm's driver takes the same leases a local job takes, so a farm
job and a local job on one store never measure an item twice.

The farm's driver runs with its real code (:meth:`FarmJob.drive`, :func:`node_task` with
a measuring child) on an executor of threads instead of Ray, so the interleaving is
forced by events: the farm leases its first items and its tasks are held; the local job
then measures everything else, finds the farm's items held, and lets the farm's tasks
run only then. Without the farm's leases the local job would measure every item and
the farm would store its items a second time.
"""
from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hwnas import registry
from hwnas.profilers.farm import FarmJob, close_clients, node_task
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.runner import ProfileJob
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Store

PROTO = TimingProtocol(warmup=0, min_repeats=3, max_repeats=3, min_time_ms=0.1, time_budget_s=0.5, sessions=1)


class GatedExecutor:
    """The farm's executor on one thread; item tasks wait for ``go`` before measuring."""

    def __init__(self, width: int) -> None:
        self.pool = ThreadPoolExecutor(1)
        self.go = threading.Event()
        self.leased = threading.Event()  # the farm has sent ``width`` item tasks
        self.width = width
        self.sent: list[str] = []

    def submit(self, config: Any, kind: str, spec: Any, *rest: Any) -> Future:
        if config is None:  # the probe
            fut: Future = Future()
            fut.set_result(node_task(config, kind, spec, *rest))
            return fut
        self.sent.append(kind)
        if len(self.sent) == self.width:
            self.leased.set()
        return self.pool.submit(self._task, config, kind, spec, *rest)

    def _task(self, *args: Any) -> dict[str, Any]:
        if not self.go.wait(120):
            raise TimeoutError("the farm's tasks were never released")
        return node_task(*args)

    def wait(self, handles: list[Future], timeout: float) -> list[Future]:
        done, _ = wait(handles, timeout, FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> dict[str, Any]:
        return handle.result()

    def cancel(self, handle: Future) -> None:
        handle.cancel()


def _counts(store: Path) -> Counter:
    con = sqlite3.connect(store)
    try:
        rows = con.execute("SELECT kind, target, network, position FROM measurements").fetchall()
        assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # every lease given back
    finally:
        con.close()
    return Counter((k, t if k != "block" else f"{n}#{p}") for k, t, n, p in rows)


@pytest.mark.timeout(300)
def test_a_farm_job_and_a_local_job_measure_each_item_once(tmp_path: Path) -> None:
    store = tmp_path / "shared.sqlite"
    Store(store).close()
    space = registry.build("search_space", "toy", n=2, k=2)
    request = ProfileRequest(backends=("fake",), protocol=PROTO, networks=2, show_progress=False)
    ex = GatedExecutor(width=2)  # one device slot: two items in flight
    farm_done = threading.Event()
    out: dict[str, Any] = {}

    def farm() -> None:
        try:
            with Store(store) as st:
                out["farm"] = FarmJob(st, space, replace(request, device_resource="fakedev")).drive(ex, slots=1)
        except BaseException as exc:  # reported below, not lost in the thread
            out["error"] = exc
        finally:
            farm_done.set()
            ex.go.set()

    def pause() -> None:  # every item left is the farm's: let its tasks run, wait for it to finish
        ex.go.set()
        assert farm_done.wait(120)

    t = threading.Thread(target=farm)
    t.start()
    try:
        assert ex.leased.wait(120), out.get("error")
        with Store(store) as st:
            job = ProfileJob(st, space, request)
            job.pause = pause
            local = job.run().backends[0]
        ex.go.set()
        t.join(120)
        assert not t.is_alive(), "the farm job did not finish"
    finally:
        ex.go.set()
        close_clients()
        ex.pool.shutdown()
    assert "error" not in out, out.get("error")
    farm_b = out["farm"].backends[0]
    n_items = len(space.primitives()) + 2
    counts = _counts(store)
    assert set(counts.values()) == {1}, counts.most_common(3)  # no item measured twice
    assert len(counts) == len(space.primitives()) + 2 * (space.n + 2)  # and none missing
    farm_items = farm_b.measured["primitive"] + farm_b.measured["network"]
    local_items = local.measured["primitive"] + local.measured["network"]
    assert farm_items == 2 and local_items == n_items - 2  # the farm's leased items, the local job the rest
    assert local.elsewhere == 2 and farm_b.elsewhere == n_items - 2
