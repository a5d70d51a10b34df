"""A device farm on Ray: profiling tasks run on the nodes that advertise a custom
resource (a node with a Jetson, a phone or an FPGA attached starts with
``ray start --resources '{"jetson": 1}'``), and stream their results to the driver.

Why this shape: the SQLite store must have one writer per job, so nodes never touch
it — each task measures one item (a primitive, or a network end to end plus its blocks)
with the very code a local job uses (:class:`hwnas.profilers.client.WorkerClient`: a
child process per backend, timeouts, crashes recorded as data) and returns the replies;
the driver writes each result in its own transaction as it arrives. The driver takes
the same leases a local job takes (:class:`hwnas.profilers.jobs.LeasedItems`): an item
is claimed before its task is sent, the leases of every task in flight are renewed
while the driver waits, and a result is written only while its lease is held — so a
farm job and local jobs on one store never measure an item twice. A node lost mid-task
costs that task, which Ray retries on another node; what was written stays, and a rerun
skips it like any resumed job. The device fingerprint is the node's, taken where the
measurement runs.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from hwnas import __version__
from hwnas.primitives import NetworkSpec
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.jobs import BUSY_POLL_S, JobItem, LeasedItems
from hwnas.profilers.messages import WorkerConfig, WorkerReply
from hwnas.profilers.runner import BackendSummary, JobSummary, ProfileJob, item_rows, network_replies
from hwnas.ui import progress

log = logging.getLogger(__name__)

#: Measuring child processes of a Ray worker, by configuration (started once, reused).
_CLIENTS: dict[str, WorkerClient] = {}
#: How often the driver renews the leases of the tasks in flight while it waits.
RENEW_EVERY_S = 30.0


def _client(config: dict[str, Any]) -> WorkerClient:
    key = json.dumps(config, sort_keys=True)
    if key not in _CLIENTS:
        _CLIENTS[key] = WorkerClient(WorkerConfig.from_dict(config))
    return _CLIENTS[key]


def close_clients() -> None:
    """Stop this process's measuring children (end of a test, or of a node's work)."""
    while _CLIENTS:
        _CLIENTS.popitem()[1].close()


def node_task(config: dict[str, Any] | None, kind: str, spec: dict[str, Any] | None, device: str, threads: int,
              timeout_s: float) -> dict[str, Any]:
    """Runs on a farm node: the node's fingerprint, and the replies for one item
    (``kind`` ``probe`` measures nothing). Replies travel as dicts (:class:`WorkerReply`)."""
    from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions

    gpu = int((config or {}).get("options", {}).get("gpu_index", 0))
    out: dict[str, Any] = {"device": device_fingerprint(device, threads, gpu_index=gpu), "replies": [],
                           "versions": {}}
    if kind == "probe" or config is None or spec is None:
        return out
    client = _client(config)
    if kind == "network":
        replies = network_replies(client, NetworkSpec.from_dict(spec), timeout_s)
    else:
        replies = [client.request("primitive", spec, timeout_s)]
    out["replies"] = [r.to_dict() for r in replies]
    out["versions"] = {**runtime_versions(), **client.versions, "hwnas": __version__}
    return out


class Executor(Protocol):
    """Where the farm's tasks run: Ray (:class:`RayExecutor`), or anything with the same
    four calls (tests drive the driver with threads)."""

    def submit(self, *args: Any) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> dict[str, Any]: ...

    def cancel(self, handle: Any) -> None: ...


class RayExecutor:
    """:func:`node_task` as a Ray task on the nodes holding ``resource``."""

    def __init__(self, ray: Any, resource: str, max_retries: int) -> None:
        self.ray = ray
        self.remote = ray.remote(node_task).options(resources={resource: 1}, num_cpus=0, max_retries=max_retries)

    def submit(self, *args: Any) -> Any:
        return self.remote.remote(*args)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return list(ready)

    def result(self, handle: Any) -> dict[str, Any]:
        return self.ray.get(handle)

    def cancel(self, handle: Any) -> None:
        self.ray.cancel(handle, force=True)


class FarmJob(ProfileJob):
    """A :class:`ProfileJob` whose items run as tasks on the nodes holding the request's
    ``device_resource`` (on the Ray cluster at ``ray_address``, or a local instance)."""

    max_retries = 3

    @property
    def resource(self) -> str:
        return str(self.request.device_resource)

    def run(self) -> JobSummary:
        """Measure every item still missing on the farm's device; returns the summary."""
        from hwnas.raycluster import connect, require_resource

        ray = connect(self.request.ray_address)
        slots = require_resource(ray, self.resource, self.request.ray_address)
        return self.drive(RayExecutor(ray, self.resource, self.max_retries), max(1, int(slots)))

    def drive(self, executor: Executor, slots: int) -> JobSummary:
        """The driver: probe a node for the device, then every backend's items, at most
        ``2 * slots`` in flight (every device busy, the driver streaming)."""
        t0 = time.perf_counter()
        probe = executor.result(executor.submit(None, "probe", None, self.device, self.protocol.threads,
                                                self.timeout_s))
        dev_id, nets, summary = self.prepare(probe["device"])
        try:
            for backend in self.backends:
                bs = BackendSummary(backend.name)
                summary.backends.append(bs)
                settings = backend.settings(self.protocol)
                leases = self.leases(dev_id, backend.name, settings, [n for n, _ in nets], bs)
                try:
                    self._farm_backend(executor, leases, backend, bs, 2 * slots)
                finally:
                    bs.elsewhere += leases.elsewhere
                    bs.left += leases.left
                    leases.close()
        finally:
            summary.wall_s = time.perf_counter() - t0
        return summary

    def _farm_backend(self, executor: Executor, leases: LeasedItems, backend: Any, bs: BackendSummary,
                      width: int) -> None:
        if not leases.remaining:
            return
        cfg = self.client_config(backend).to_dict()
        settings = backend.settings(self.protocol)
        leases.progress = bar = progress(total=leases.remaining, desc=f"{backend.name}@{self.resource}",
                                         unit="item", disable=None if self.request.show_progress is None
                                         else not self.request.show_progress)
        inflight: dict[Any, JobItem] = {}
        renewed = time.monotonic()
        try:
            while True:
                while len(inflight) < width:  # taking waits for busy items only when nothing is in flight
                    it = leases.take(wait=not inflight)
                    if it is None:
                        break
                    inflight[executor.submit(cfg, it.key.kind, it.obj.to_dict(), self.device, self.protocol.threads,
                                             self.timeout_s)] = it
                if not inflight:
                    return
                ready = executor.wait(list(inflight), BUSY_POLL_S if leases.pending else RENEW_EVERY_S)
                if time.monotonic() - renewed >= RENEW_EVERY_S:
                    self._renew(leases, inflight)
                    renewed = time.monotonic()
                if ready:
                    it = inflight.pop(ready[0])
                    self._store(leases, it, executor.result(ready[0]), backend.name, settings, bs)
        finally:
            bar.close()
            for ref in inflight:
                executor.cancel(ref)

    def _renew(self, leases: LeasedItems, inflight: dict[Any, JobItem]) -> None:
        """Keep the leases of the tasks in flight (a task waiting in Ray's queue included)."""
        for it in inflight.values():
            leases.claims.renew(it.key, it.ttl_s)  # a lost lease shows at commit: nothing is stored

    def _store(self, leases: LeasedItems, it: JobItem, res: dict[str, Any], backend: str, settings: dict[str, Any],
               bs: BackendSummary) -> None:
        """Write one finished item under its lease (one transaction), on the device of the
        node that measured it."""
        dev_id = self.store.add_device(res["device"])
        replies = [WorkerReply.from_dict(r) for r in res["replies"]]
        rows = item_rows(it.obj, replies, backend, settings, res["versions"])
        if dev_id != it.key.device_id:  # a node of another kind answered: rows on its own device
            leases.release(it)
            self.store.add_measurements(dev_id, rows)
        elif leases.commit(it, rows) is None:
            return
        for m in rows:
            self._count(bs, m)
