"""The profiling job: every primitive of a space, and sampled networks end to end and
block by block, for one or more backends, into the cost store.

Why it is shaped this way: jobs run for hours on shared machines, so each item is
measured in a child process under a timeout (a hang or crash costs one item and is
stored as an error), each item is written in its own transaction (a kill loses at most
the item in flight), and a rerun asks the store what is already measured for these
exact settings and skips it — except failures (``retry_failed``) and flagged, disturbed
measurements (``retry_flagged``), which are data but never final. Several jobs may work
on one store at once: each claims an item before measuring it (:mod:`hwnas.store.claims`),
so no item is measured twice and a killed job's item is taken over.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

import numpy as np

from hwnas import __version__, registry
from hwnas.errors import ConfigError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.jobs import LEASE_GRACE_S, JobItem, LeasedItems, resumable
from hwnas.profilers.messages import WorkerConfig, WorkerReply, worker_config
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.summary import BackendSummary, JobSummary
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store, settings_hash
from hwnas.store.claims import ItemKey
from hwnas.ui import progress

log = logging.getLogger(__name__)

SOURCE = "hwnas profile"
#: A space job's per-item timeout when the request gives none.
DEFAULT_TIMEOUT_S = 300.0

__all__ = ["BackendSummary", "JobSummary", "ProfileJob", "sample_networks"]


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


def network_replies(client: WorkerClient, net: NetworkSpec, timeout_s: float) -> list[WorkerReply]:
    """Measure a network end to end, then each of its blocks (replies in that order)."""
    out = [client.request("network", net.to_dict(), timeout_s * 2)]
    out += [client.request("primitive", node.to_dict(), timeout_s) for node in net.nodes]
    return out


def item_ttl(kind: str, timeout_s: float) -> float:
    """How long a lease on a space item lasts before its first renewal."""
    return timeout_s * (2 if kind == "network" else 1) + LEASE_GRACE_S


def item_rows(obj: Primitive | NetworkSpec, replies: list[WorkerReply], backend: str, settings: dict[str, Any],
              versions: dict[str, Any]) -> list[Measurement]:
    """The rows of one space item: a primitive, or a network end to end (first reply)
    and then block by block (stored together, so a network is never left without its
    blocks)."""
    if isinstance(obj, Primitive):
        return [_measurement("primitive", obj.key, backend, settings, replies[0], versions)]
    rows = [_measurement("network", obj.hash, backend, settings, replies[0], versions)]
    for pos, (node, r) in enumerate(zip(obj.nodes, replies[1:])):
        rows.append(_measurement("block", node.key, backend, settings, r, versions, network=obj.hash,
                                 position=pos))
    return rows


def _measurement(kind: str, target: str, backend: str, settings: dict[str, Any], reply: WorkerReply,
                 versions: dict[str, Any], *, network: str | None = None, position: int | None = None) -> Measurement:
    if reply.ok:
        r = dict(reply.result or {})
        extra = {"number": r.get("number"), "stable": r.get("stable"), "overhead_s": r.get("overhead_s"),
                 "session_medians_ms": r.get("session_medians_ms"),
                 "energy_source": r.get("energy_source")}
        evidence = dict(r.get("evidence") or {})
        return Measurement(kind, target, backend, settings, reply.samples_ms, None, r.get("energy_mj"),
                           r.get("power_w"), network, position, versions, SOURCE, extra,
                           estimate_ms=r.get("estimate_ms"), flagged=r.get("flagged"), evidence=evidence)
    return Measurement(kind, target, backend, settings, (), str(reply.error), network=network, position=position,
                       versions=versions, source=SOURCE)


class ProfileJob:
    """One profiling job over a space. Build it, then call :meth:`run`.

    The request's ``retry_failed`` / ``retry_flagged`` re-measure items whose newest row
    failed / was flagged as disturbed; ``deadline_s`` stops cleanly after the item in
    flight once that many seconds have passed (a rerun resumes). ``primitives``: measure
    these instead of the space's own.
    """

    def __init__(self, store: Store, space: Any, request: ProfileRequest | None = None, *,
                 primitives: Iterable[Primitive] | None = None) -> None:
        self.store = store
        self.space = space
        self.request = request = request or ProfileRequest()
        self.protocol = request.timing()
        self.timeout_s = request.timeout(DEFAULT_TIMEOUT_S)
        check_timeout(self.timeout_s, self.protocol)
        self.primitives = list(primitives) if primitives is not None else list(space.primitives())
        self.deadline = None if request.deadline_s is None else time.monotonic() + request.deadline_s
        opts = request.backend_options(getattr(store, "path", None))
        self.backends = [registry.build("backend", b, device=request.device, threads=self.protocol.threads,
                                        **opts.get(b, {})) for b in request.backends]
        #: how the job waits while every item left is held by another live job (None: a short sleep)
        self.pause: Callable[[], None] | None = None

    @property
    def device(self) -> str:
        return self.request.device

    def check(self) -> None:
        """Fail fast (one line) when a backend cannot drive the device."""
        for b in self.backends:
            b.check_device()

    def prepare(self, dev: Any) -> tuple[int, list[tuple[NetworkSpec, Any]], JobSummary]:
        """Register the device, the sampled networks and the primitives in the store."""
        dev_id = self.store.add_device(dev)
        n = self.request.networks
        nets = sample_networks(self.space, n, self.request.seed) if n else []
        with self.store.transaction():
            for net, arch in nets:
                self.store.add_network(net, space=self.space.name, arch=arch)
            for p in self.primitives:
                self.store.add_primitive(p)
        summary = JobSummary(self.space.name, str(self.store.path), dev.name, dev.fingerprint,
                             len(self.primitives), len(nets), [])
        return dev_id, nets, summary

    def client_config(self, backend: Any) -> WorkerConfig:
        """What the measuring child process needs (JSON-able: it also travels to Ray nodes)."""
        # every space item is exported from torch: the worker imports the exporter up front
        return worker_config(backend, self.device, self.protocol, imports=(*self.request.imports, "hwnas.nn.export"),
                             energy=self.request.energy)

    def run(self) -> JobSummary:
        t0 = time.perf_counter()
        self.check()
        # The first backend's worker starts now and imports its runtimes (torch, the
        # runtime: ~1-2 s) while this process fingerprints the device and fills the store.
        early = WorkerClient(self.client_config(self.backends[0])) if self.backends else None
        if early is not None:
            early.spawn()
        try:
            gpu = next((b.gpu_index for b in self.backends), 0)
            dev = device_fingerprint(self.device, self.protocol.threads, gpu_index=gpu)
            dev_id, nets, summary = self.prepare(dev)
            base_versions = {**runtime_versions(), "hwnas": __version__}
            try:
                for i, backend in enumerate(self.backends):
                    bs = BackendSummary(backend.name)
                    summary.backends.append(bs)
                    self._run_backend(backend, dev_id, [n for n, _ in nets], bs, base_versions,
                                      early if i == 0 else None)
            except KeyboardInterrupt:
                summary.interrupted = True
                raise
            finally:
                summary.wall_s = time.perf_counter() - t0
        finally:
            if early is not None:
                early.close()  # no-op when the backend's run closed it; killed when never used
        return summary

    def leases(self, dev_id: int, backend: str, settings: dict[str, Any], nets: list[NetworkSpec],
               bs: BackendSummary) -> LeasedItems:
        """This backend's items not yet measured (the rest counted as skipped), as leases to take."""
        sh = settings_hash(settings)
        bs.settings_hash = sh
        done = resumable(self.store, retry_failed=self.request.retry_failed,
                         retry_flagged=self.request.retry_flagged)
        items = [JobItem(ItemKey(dev_id, backend, sh, "primitive", p.key), p, item_ttl("primitive", self.timeout_s))
                 for p in self.primitives]
        items += [JobItem(ItemKey(dev_id, backend, sh, "network", n.hash), n, item_ttl("network", self.timeout_s))
                  for n in nets]
        todo = [it for it in items if not done(it.key)]
        for kind in ("primitive", "network"):
            bs.skipped[kind] = sum(1 for it in items if it.key.kind == kind) - \
                sum(1 for it in todo if it.key.kind == kind)
        return LeasedItems(self.store, todo, done, deadline=self.deadline, pause=self.pause)

    def _run_backend(self, backend: Any, dev_id: int, nets: list[NetworkSpec], bs: BackendSummary,
                     base_versions: dict[str, Any], client: WorkerClient | None = None) -> None:
        settings = backend.settings(self.protocol)
        leases = self.leases(dev_id, backend.name, settings, nets, bs)
        n_todo = leases.remaining
        if not n_todo:
            return
        client = client or WorkerClient(self.client_config(backend))
        versions = dict(base_versions)
        disable = None if self.request.show_progress is None else not self.request.show_progress
        leases.progress = bar = progress(total=n_todo, desc=backend.name, disable=disable, unit="item")
        try:
            client.start()
            versions.update(client.versions)

            def measure(it: JobItem) -> list[Measurement]:
                bar.set_postfix_str(it.key.target[:40], refresh=False)
                return self._measure(it, client, leases, backend.name, settings, versions)

            leases.run(measure, lambda _, rows: [self._count(bs, m) for m in rows])
        finally:
            bs.elsewhere += leases.elsewhere
            bs.left += leases.left
            leases.close()
            bar.close()
            client.close()

    def _measure(self, it: JobItem, client: WorkerClient, leases: LeasedItems, backend: str,
                 settings: dict[str, Any], versions: dict[str, Any]) -> list[Measurement]:
        """One item's rows: a primitive, or a network end to end and then block by block;
        the lease is renewed before every request."""
        def ask(kind: str, spec: dict[str, Any], timeout: float) -> WorkerReply:
            leases.renew(it, timeout)
            return client.request(kind, spec, timeout)

        if isinstance(it.obj, Primitive):
            return item_rows(it.obj, [ask("primitive", it.obj.to_dict(), self.timeout_s)], backend, settings,
                             versions)
        net = it.obj
        replies = [ask("network", net.to_dict(), self.timeout_s * 2)]
        replies += [ask("primitive", node.to_dict(), self.timeout_s) for node in net.nodes]
        return item_rows(net, replies, backend, settings, versions)

    @staticmethod
    def _count(bs: BackendSummary, m: Measurement) -> None:
        if m.error is None:
            bs.measured[m.kind] += 1
            total = (m.extra.get("overhead_s") or {}).get("total")
            if total is not None and m.kind != "block":
                bs.overhead_s.append(float(total))
            bs.add_evidence(dict(m.evidence), m.flagged)
        else:
            bs.failed[m.kind] += 1
            bs.errors.append(m.error)
            log.info("%s failed: %s", m.kind, m.error)


def check_timeout(timeout_s: float, protocol: TimingProtocol) -> None:
    """Refuse a per-item timeout shorter than the timing protocol may need: it would
    store every item as a failure that is the timeout's fault, not the item's."""
    need = protocol.item_seconds()
    if not timeout_s > 0 or timeout_s < need:
        raise ConfigError(f"timeout: {timeout_s:g} s is shorter than the timing protocol may need per item "
                          f"({need:g} s: {protocol.sessions} session(s) x time budget {protocol.time_budget_s:g} s); "
                          "give a longer timeout, or a shorter time budget / fewer sessions")
