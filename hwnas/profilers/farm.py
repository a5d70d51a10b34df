"""A device farm on Ray: profiling tasks run on the nodes that advertise a custom
resource (a node with a Jetson, a phone or an FPGA attached starts with
``ray start --resources '{"jetson": 1}'``), and stream their results to the driver.

Why this shape: the SQLite store must have one writer, so nodes never touch it — each
task measures one item (a primitive, or a network end to end plus its blocks) with the
very code a local job uses (:class:`hwnas.profilers.client.WorkerClient`: a child
process per backend, timeouts, crashes recorded as data) and returns the replies; the
driver writes each result in its own transaction as it arrives. A node lost mid-task
costs that task, which Ray retries on another node; what was written stays, and a
rerun skips it like any resumed job. The device fingerprint is the node's, taken where
the measurement runs.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from hwnas import __version__
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.runner import BackendSummary, JobSummary, ProfileJob, _measurement, network_replies, network_rows
from hwnas.store import settings_hash
from hwnas.ui import progress

log = logging.getLogger(__name__)

#: Measuring child processes of a Ray worker, by configuration (started once, reused).
_CLIENTS: dict[str, WorkerClient] = {}


def _client(config: dict[str, Any]) -> WorkerClient:
    key = json.dumps(config, sort_keys=True)
    if key not in _CLIENTS:
        _CLIENTS[key] = WorkerClient(config)
    return _CLIENTS[key]


def node_task(config: dict[str, Any] | None, kind: str, spec: dict[str, Any] | None, device: str, threads: int,
              timeout_s: float) -> dict[str, Any]:
    """Runs on a farm node: the node's fingerprint, and the replies for one item
    (``kind`` ``probe`` measures nothing)."""
    from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions

    gpu = int((config or {}).get("options", {}).get("gpu_index", 0))
    out: dict[str, Any] = {"device": device_fingerprint(device, threads, gpu_index=gpu), "replies": [],
                           "versions": {}}
    if kind == "probe" or config is None or spec is None:
        return out
    client = _client(config)
    if kind == "network":
        out["replies"] = network_replies(client, NetworkSpec.from_dict(spec), timeout_s)
    else:
        out["replies"] = [client.request("primitive", spec, timeout_s)]
    out["versions"] = {**runtime_versions(), **client.versions, "hwnas": __version__}
    return out


class FarmJob(ProfileJob):
    """A :class:`ProfileJob` whose items run as Ray tasks on nodes holding ``resource``."""

    def __init__(self, *args: Any, resource: str, ray_address: str | None = None, max_retries: int = 3,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resource = resource
        self.ray_address = ray_address
        self.max_retries = max_retries

    def _remote(self, ray: Any) -> Any:
        return ray.remote(node_task).options(resources={self.resource: 1}, num_cpus=0,
                                             max_retries=self.max_retries)

    def run(self) -> JobSummary:
        """Measure every item still missing on the farm's device; returns the summary."""
        from hwnas.raycluster import connect, require_resource

        t0 = time.perf_counter()
        ray = connect(self.ray_address)
        slots = require_resource(ray, self.resource, self.ray_address)
        remote = self._remote(ray)
        probe = ray.get(remote.remote(None, "probe", None, self.device, self.protocol.threads, self.timeout_s))
        dev_id, nets, summary = self.prepare(probe["device"])
        try:
            for backend in self.backends:
                bs = BackendSummary(backend.name)
                summary.backends.append(bs)
                self._farm_backend(ray, remote, backend, dev_id, nets, bs, max(1, int(slots)))
        finally:
            summary.wall_s = time.perf_counter() - t0
        return summary

    def _farm_backend(self, ray: Any, remote: Any, backend: Any, dev_id: int, nets: list[tuple[NetworkSpec, Any]],
                      bs: BackendSummary, slots: int) -> None:
        settings = backend.settings(self.protocol)
        bs.settings_hash = settings_hash(settings)
        todo = self._todo(dev_id, backend.name, settings, [n for n, _ in nets], bs, self.store.max_id())
        items: list[Primitive | NetworkSpec] = [it.obj for it in todo]
        if not items:
            return
        cfg = self.client_config(backend)
        bar = progress(total=len(items), desc=f"{backend.name}@{self.resource}", unit="item",
                       disable=None if self.show_progress is None else not self.show_progress)
        inflight: dict[Any, Primitive | NetworkSpec] = {}
        queue = list(items)
        try:
            while queue or inflight:
                while queue and len(inflight) < 2 * slots:  # keep every device busy, the driver streaming
                    item = queue.pop(0)
                    kind = "network" if isinstance(item, NetworkSpec) else "primitive"
                    inflight[remote.remote(cfg, kind, item.to_dict(), self.device, self.protocol.threads,
                                           self.timeout_s)] = item
                ready, _ = ray.wait(list(inflight), num_returns=1)
                item = inflight.pop(ready[0])
                self._store(ray.get(ready[0]), item, backend.name, settings, bs)
                bar.update(1)
        finally:
            bar.close()
            for ref in inflight:
                ray.cancel(ref, force=True)

    def _store(self, res: dict[str, Any], item: Primitive | NetworkSpec, backend: str, settings: dict[str, Any],
               bs: BackendSummary) -> None:
        """Write one finished item (one transaction), on the device of the node that measured it."""
        dev_id = self.store.add_device(res["device"])
        versions = res["versions"]
        if isinstance(item, NetworkSpec):
            rows = network_rows(res["replies"], item, backend, settings, versions)
        else:
            rows = [_measurement("primitive", item.key, backend, settings, res["replies"][0], versions)]
        self.store.add_measurements(dev_id, rows)  # one transaction: a network with its blocks
        for m in rows:
            self._count(bs, m)
