"""The profiling job: every primitive of a space, and sampled networks end to end and
block by block, for one or more backends, into the cost store.

Why it is shaped this way: jobs run for hours on shared machines, so each item is
measured in a child process under a timeout (a hang or crash costs one item and is
stored as an error), each item is written in its own transaction (a kill loses at most
the item in flight), and a rerun asks the store what is already measured for these
exact settings and skips it.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from hwnas import __version__, registry
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store
from hwnas.ui import progress

log = logging.getLogger(__name__)

SOURCE = "hwnas profile"


@dataclass
class BackendSummary:
    """Counts and overhead of one backend in one job."""

    backend: str
    settings_hash: str = ""
    measured: dict[str, int] = field(default_factory=lambda: {"primitive": 0, "network": 0, "block": 0})
    skipped: dict[str, int] = field(default_factory=lambda: {"primitive": 0, "network": 0})
    failed: dict[str, int] = field(default_factory=lambda: {"primitive": 0, "network": 0, "block": 0})
    overhead_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "primitives": self.measured["primitive"], "networks": self.measured["network"],
            "blocks": self.measured["block"],
            "skipped": self.skipped["primitive"] + self.skipped["network"],
            "failed": self.failed["primitive"] + self.failed["network"] + self.failed["block"],
            "median_overhead_s": statistics.median(self.overhead_s) if self.overhead_s else None,
        }


@dataclass
class JobSummary:
    """What a job did (rendered by the CLI; also returned as JSON)."""

    space: str
    store: str
    device: str
    device_fingerprint: str
    n_primitives: int
    n_networks: int
    backends: list[BackendSummary]
    wall_s: float = 0.0
    interrupted: bool = False

    def rows(self) -> list[dict[str, Any]]:
        return [b.row() for b in self.backends]

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "store": self.store, "device": self.device,
                "device_fingerprint": self.device_fingerprint, "n_primitives": self.n_primitives,
                "n_networks": self.n_networks, "wall_s": self.wall_s, "interrupted": self.interrupted,
                "backends": [{**b.row(), "settings_hash": b.settings_hash, "errors": b.errors[:20]}
                             for b in self.backends]}


def sample_networks(space: Any, n: int, seed: int) -> list[tuple[NetworkSpec, Any]]:
    """``n`` distinct networks (dedupe by content hash) from a seeded RNG, with their archs."""
    rng = np.random.default_rng(seed)
    seen: dict[str, tuple[NetworkSpec, Any]] = {}
    attempts = 0
    while len(seen) < n and attempts < 50 * max(n, 1):
        attempts += 1
        arch = space.sample(rng)
        net = space.to_network(arch)
        seen.setdefault(net.hash, (net, space.to_jsonable(arch)))
    if len(seen) < n:
        log.warning("only %d distinct networks found after %d samples", len(seen), attempts)
    return list(seen.values())


def _measurement(kind: str, target: str, backend: str, settings: dict[str, Any], reply: dict[str, Any],
                 versions: dict[str, Any], *, network: str | None = None, position: int | None = None) -> Measurement:
    if reply.get("ok"):
        r = reply["result"]
        extra = {"number": r.get("number"), "stable": r.get("stable"), "overhead_s": r.get("overhead_s"),
                 "session_medians_ms": r.get("session_medians_ms"),
                 "energy_source": r.get("energy_source")}
        return Measurement(kind, target, backend, settings, tuple(r["samples_ms"]), None, r.get("energy_mj"),
                           r.get("power_w"), network, position, versions, SOURCE, extra)
    return Measurement(kind, target, backend, settings, (), str(reply.get("error") or "unknown error"),
                       network=network, position=position, versions=versions, source=SOURCE)


def network_replies(client: WorkerClient, net: NetworkSpec, timeout_s: float) -> list[dict[str, Any]]:
    """Measure a network end to end, then each of its blocks (replies in that order)."""
    out = [client.request("network", net.to_dict(), timeout_s * 2)]
    out += [client.request("primitive", node.to_dict(), timeout_s) for node in net.nodes]
    return out


class ProfileJob:
    """One profiling job. Build it, then call :meth:`run`."""

    def __init__(self, store: Store, space: Any, *, backends: Sequence[str], device: str = "cpu",
                 protocol: TimingProtocol | None = None, networks: int = 0, seed: int = 0,
                 timeout_s: float = 300.0, backend_options: dict[str, dict[str, Any]] | None = None,
                 primitives: Iterable[Primitive] | None = None, imports: Sequence[str] = (),
                 energy: bool = True, show_progress: bool | None = None) -> None:
        self.store = store
        self.space = space
        self.backend_names = list(backends)
        self.device = device
        self.protocol = protocol or TimingProtocol()
        self.n_networks = networks
        self.seed = seed
        self.timeout_s = timeout_s
        self.backend_options = backend_options or {}
        self.primitives = list(primitives) if primitives is not None else list(space.primitives())
        self.imports = list(imports)
        self.energy = energy
        self.show_progress = show_progress
        self.backends = [registry.build("backend", b, device=device, threads=self.protocol.threads,
                                        **self.backend_options.get(b, {})) for b in self.backend_names]

    def check(self) -> None:
        """Fail fast (one line) when a backend cannot drive the device."""
        for b in self.backends:
            b.check_device()

    def prepare(self, dev: Any) -> tuple[int, list[tuple[NetworkSpec, Any]], JobSummary]:
        """Register the device, the sampled networks and the primitives in the store."""
        dev_id = self.store.add_device(dev)
        nets = sample_networks(self.space, self.n_networks, self.seed) if self.n_networks else []
        for net, arch in nets:
            self.store.add_network(net, space=self.space.name, arch=arch)
        for p in self.primitives:
            self.store.add_primitive(p)
        summary = JobSummary(self.space.name, str(self.store.path), dev.name, dev.fingerprint,
                             len(self.primitives), len(nets), [])
        return dev_id, nets, summary

    def todo(self, backend: Any, dev_id: int, nets: list[tuple[NetworkSpec, Any]],
             bs: BackendSummary) -> tuple[dict[str, Any], list[Primitive], list[NetworkSpec]]:
        """(settings, primitives, networks) still to measure: what the store already holds
        for this device and these exact settings is skipped (resume)."""
        from hwnas.store import settings_hash

        settings = backend.settings(self.protocol)
        bs.settings_hash = settings_hash(settings)
        done_p = self.store.measured(dev_id, backend.name, settings, "primitive")
        done_n = self.store.measured(dev_id, backend.name, settings, "network") & \
            self.store.measured_blocks(dev_id, backend.name, settings)
        todo_p = [p for p in self.primitives if p.key not in done_p]
        todo_n = [n for n, _ in nets if n.hash not in done_n]
        bs.skipped["primitive"] = len(self.primitives) - len(todo_p)
        bs.skipped["network"] = len(nets) - len(todo_n)
        return settings, todo_p, todo_n

    def client_config(self, backend: Any) -> dict[str, Any]:
        """What the measuring child process needs (JSON-able: it also travels to Ray nodes)."""
        return {"backend": backend.name, "device": self.device, "options": backend.options,
                "protocol": self.protocol.to_dict(), "imports": self.imports, "energy": self.energy}

    def run(self) -> JobSummary:
        t0 = time.perf_counter()
        self.check()
        gpu = next((b.gpu_index for b in self.backends), 0)
        dev = device_fingerprint(self.device, self.protocol.threads, gpu_index=gpu)
        dev_id, nets, summary = self.prepare(dev)
        base_versions = {**runtime_versions(), "hwnas": __version__}
        try:
            for backend in self.backends:
                bs = BackendSummary(backend.name)
                summary.backends.append(bs)
                self._run_backend(backend, dev_id, nets, bs, base_versions)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            summary.wall_s = time.perf_counter() - t0
        return summary

    def _run_backend(self, backend: Any, dev_id: int, nets: list[tuple[NetworkSpec, Any]], bs: BackendSummary,
                     base_versions: dict[str, Any]) -> None:
        settings, todo_p, todo_n = self.todo(backend, dev_id, nets, bs)
        if not todo_p and not todo_n:
            return
        client = WorkerClient(self.client_config(backend))
        versions = dict(base_versions)
        disable = None if self.show_progress is None else not self.show_progress
        bar = progress(total=len(todo_p) + len(todo_n), desc=backend.name, disable=disable, unit="item")
        try:
            client.start()
            versions.update(client.versions)
            for p in todo_p:
                bar.set_postfix_str(p.key[:40], refresh=False)
                reply = client.request("primitive", p.to_dict(), self.timeout_s)
                m = _measurement("primitive", p.key, backend.name, settings, reply, versions)
                self.store.add_measurement(dev_id, m)
                self._count(bs, "primitive", reply)
                bar.update(1)
            for net in todo_n:
                bar.set_postfix_str(f"net {net.hash}", refresh=False)
                rows = self._network_rows(client, net, backend.name, settings, versions, bs)
                self.store.add_measurements(dev_id, rows)  # one transaction: network + its blocks
                bar.update(1)
        finally:
            bar.close()
            client.close()

    def _network_rows(self, client: WorkerClient, net: NetworkSpec, backend: str, settings: dict[str, Any],
                      versions: dict[str, Any], bs: BackendSummary) -> list[Measurement]:
        return self.network_rows(network_replies(client, net, self.timeout_s), net, backend, settings, versions, bs)

    def network_rows(self, replies: list[dict[str, Any]], net: NetworkSpec, backend: str, settings: dict[str, Any],
                     versions: dict[str, Any], bs: BackendSummary) -> list[Measurement]:
        """The rows of one network: end to end (first reply), then block by block."""
        rows = [_measurement("network", net.hash, backend, settings, replies[0], versions)]
        self._count(bs, "network", replies[0])
        for pos, (node, r) in enumerate(zip(net.nodes, replies[1:])):
            rows.append(_measurement("block", node.key, backend, settings, r, versions, network=net.hash,
                                     position=pos))
            self._count(bs, "block", r)
        return rows

    @staticmethod
    def _count(bs: BackendSummary, kind: str, reply: dict[str, Any]) -> None:
        if reply.get("ok"):
            bs.measured[kind] += 1
            total = (reply["result"].get("overhead_s") or {}).get("total")
            if total is not None and kind != "block":
                bs.overhead_s.append(float(total))
        else:
            bs.failed[kind] += 1
            bs.errors.append(str(reply.get("error")))
            log.info("%s failed: %s", kind, reply.get("error"))
