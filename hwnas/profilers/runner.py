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
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from hwnas import __version__, registry
from hwnas.errors import ConfigError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.client import STARTUP_TIMEOUT_S, WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.summary import BackendSummary, JobSummary
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store, settings_hash
from hwnas.store.claims import BUSY, CLAIMED, Claims, ItemKey, item_done
from hwnas.ui import progress

log = logging.getLogger(__name__)

SOURCE = "hwnas profile"
#: Seconds a claim outlives the request it covers (restarting a crashed worker included).
LEASE_GRACE_S = STARTUP_TIMEOUT_S + 30.0
#: How often a job looks again at items another live job is measuring.
BUSY_POLL_S = 0.2

__all__ = ["BackendSummary", "JobSummary", "ProfileJob", "sample_networks"]


@dataclass
class _Item:
    key: ItemKey
    obj: Primitive | NetworkSpec


class _LostClaim(Exception):
    """Our claim was taken over while we measured (we stalled past its expiry)."""


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


def network_replies(client: WorkerClient, net: NetworkSpec, timeout_s: float) -> list[dict[str, Any]]:
    """Measure a network end to end, then each of its blocks (replies in that order)."""
    out = [client.request("network", net.to_dict(), timeout_s * 2)]
    out += [client.request("primitive", node.to_dict(), timeout_s) for node in net.nodes]
    return out


def network_rows(replies: list[dict[str, Any]], net: NetworkSpec, backend: str, settings: dict[str, Any],
                 versions: dict[str, Any]) -> list[Measurement]:
    """The rows of one network: end to end (first reply), then block by block (stored
    together, so a network is never left without its blocks)."""
    rows = [_measurement("network", net.hash, backend, settings, replies[0], versions)]
    for pos, (node, r) in enumerate(zip(net.nodes, replies[1:])):
        rows.append(_measurement("block", node.key, backend, settings, r, versions, network=net.hash,
                                 position=pos))
    return rows


def _measurement(kind: str, target: str, backend: str, settings: dict[str, Any], reply: dict[str, Any],
                 versions: dict[str, Any], *, network: str | None = None, position: int | None = None) -> Measurement:
    if reply.get("ok"):
        r = reply["result"]
        extra = {"number": r.get("number"), "stable": r.get("stable"), "overhead_s": r.get("overhead_s"),
                 "session_medians_ms": r.get("session_medians_ms"),
                 "energy_source": r.get("energy_source")}
        evidence = dict(r.get("evidence") or {})
        return Measurement(kind, target, backend, settings, tuple(r["samples_ms"]), None, r.get("energy_mj"),
                           r.get("power_w"), network, position, versions, SOURCE, extra,
                           estimate_ms=r.get("estimate_ms"), flagged=r.get("flagged"), evidence=evidence)
    return Measurement(kind, target, backend, settings, (), str(reply.get("error") or "unknown error"),
                       network=network, position=position, versions=versions, source=SOURCE)


class ProfileJob:
    """One profiling job. Build it, then call :meth:`run`.

    ``retry_failed`` / ``retry_flagged`` re-measure items whose newest row failed / was
    flagged as disturbed; ``deadline_s`` stops cleanly after the item in flight once that
    many seconds have passed (a rerun resumes).
    """

    def __init__(self, store: Store, space: Any, *, backends: Sequence[str], device: str = "cpu",
                 protocol: TimingProtocol | None = None, networks: int = 0, seed: int = 0,
                 timeout_s: float = 300.0, backend_options: dict[str, dict[str, Any]] | None = None,
                 primitives: Iterable[Primitive] | None = None, imports: Sequence[str] = (),
                 energy: bool = True, show_progress: bool | None = None, retry_failed: bool = False,
                 retry_flagged: bool = False, deadline_s: float | None = None) -> None:
        self.store = store
        self.space = space
        self.backend_names = list(backends)
        self.device = device
        self.protocol = protocol or TimingProtocol()
        check_timeout(timeout_s, self.protocol)
        self.n_networks = networks
        self.seed = seed
        self.timeout_s = timeout_s
        self.backend_options = backend_options or {}
        self.primitives = list(primitives) if primitives is not None else list(space.primitives())
        self.imports = list(imports)
        self.energy = energy
        self.show_progress = show_progress
        self.retry_failed = retry_failed
        self.retry_flagged = retry_flagged
        self.deadline = None if deadline_s is None else time.monotonic() + deadline_s
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
        with self.store.transaction():
            for net, arch in nets:
                self.store.add_network(net, space=self.space.name, arch=arch)
            for p in self.primitives:
                self.store.add_primitive(p)
        summary = JobSummary(self.space.name, str(self.store.path), dev.name, dev.fingerprint,
                             len(self.primitives), len(nets), [])
        return dev_id, nets, summary

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
                self._run_backend(backend, dev_id, [n for n, _ in nets], bs, base_versions)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            summary.wall_s = time.perf_counter() - t0
        return summary

    def _todo(self, dev_id: int, backend: str, settings: dict[str, Any], nets: list[NetworkSpec],
              bs: BackendSummary, since_id: int) -> list[_Item]:
        sh = settings_hash(settings)
        items = [_Item(ItemKey(dev_id, backend, sh, "primitive", p.key), p) for p in self.primitives] + \
                [_Item(ItemKey(dev_id, backend, sh, "network", n.hash), n) for n in nets]
        todo = [it for it in items if not self._done(it.key, since_id)]
        done = {it.key for it in items} - {it.key for it in todo}
        for kind in ("primitive", "network"):
            bs.skipped[kind] = sum(1 for k in done if k.kind == kind)
        return todo

    def _done(self, key: ItemKey, since_id: int) -> bool:
        return item_done(self.store, key, retry_failed=self.retry_failed, retry_flagged=self.retry_flagged,
                         since_id=since_id)

    def _run_backend(self, backend: Any, dev_id: int, nets: list[NetworkSpec], bs: BackendSummary,
                     base_versions: dict[str, Any]) -> None:
        settings = backend.settings(self.protocol)
        bs.settings_hash = settings_hash(settings)
        since_id = self.store.max_id()
        todo = self._todo(dev_id, backend.name, settings, nets, bs, since_id)
        if not todo:
            return
        client = WorkerClient(self.client_config(backend))
        claims = Claims(self.store)
        versions = dict(base_versions)
        disable = None if self.show_progress is None else not self.show_progress
        bar = progress(total=len(todo), desc=backend.name, disable=disable, unit="item")
        try:
            client.start()
            versions.update(client.versions)
            busy = todo
            while busy:  # items another live job holds are looked at again until done or ours
                busy = self._pass(busy, client, claims, backend.name, settings, versions, bs, bar, since_id)
                if busy and not self._late():
                    time.sleep(BUSY_POLL_S)
                elif busy:
                    bs.left += len(busy)
                    break
        finally:
            claims.release_all()
            bar.close()
            client.close()

    def _late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _pass(self, items: list[_Item], client: WorkerClient, claims: Claims, backend: str,
              settings: dict[str, Any], versions: dict[str, Any], bs: BackendSummary, bar: Any,
              since_id: int) -> list[_Item]:
        """Measure every item this job can claim; return those another live job holds."""
        busy: list[_Item] = []
        for n, it in enumerate(items):
            if self._late():
                bs.left += len(items) - n
                return []
            state = claims.claim(it.key, self._ttl(it), lambda: self._done(it.key, since_id))
            if state == BUSY:
                busy.append(it)
                continue
            if state != CLAIMED:
                bs.elsewhere += 1
                bar.update(1)
                continue
            bar.set_postfix_str(it.key.target[:40], refresh=False)
            try:
                rows = self._measure(it, client, claims, backend, settings, versions)
            except _LostClaim:
                bs.elsewhere += 1
                continue
            if claims.commit(it.key, rows) is None:
                bs.elsewhere += 1
            else:
                for m in rows:
                    self._count(bs, m)
            bar.update(1)
        return busy

    def _ttl(self, it: _Item) -> float:
        return self.timeout_s * (2 if it.key.kind == "network" else 1) + LEASE_GRACE_S

    def _measure(self, it: _Item, client: WorkerClient, claims: Claims, backend: str, settings: dict[str, Any],
                 versions: dict[str, Any]) -> list[Measurement]:
        """One item's rows: a primitive, or a network end to end and then block by block
        (stored together, so a network is never left without its blocks)."""
        def ask(kind: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
            if not claims.renew(it.key, timeout + LEASE_GRACE_S):
                raise _LostClaim(it.key.target)
            return client.request(kind, spec, timeout)

        if isinstance(it.obj, Primitive):
            reply = ask("primitive", it.obj.to_dict(), self.timeout_s)
            return [_measurement("primitive", it.obj.key, backend, settings, reply, versions)]
        net = it.obj
        replies = [ask("network", net.to_dict(), self.timeout_s * 2)]
        replies += [ask("primitive", node.to_dict(), self.timeout_s) for node in net.nodes]
        return network_rows(replies, net, backend, settings, versions)

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
