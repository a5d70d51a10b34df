"""``hwnas profile --kernels``: sample kernels in random networks, time them in context,
store every kernel of every network; resumable, in rounds, within a time limit.

Why rounds: adaptive sampling. Round 0 draws block families evenly; before each later
round the caller's ``advisor`` (the kernel predictors fitted on what the store holds from
earlier rounds) says which families it predicts worst, and those are drawn more often.
Each round's networks depend only on the seed and on earlier rounds, so a killed job
rerun with the same options draws the same networks and skips those already measured;
``time_limit_s`` ends a run between two networks, so long jobs are split into pieces.

Each network is one store item: the op-level graph (``networks``, space ``kernels``),
its end-to-end time (kind ``network``) and one ``block`` row per detected kernel with
the per-run times the runtime's profiler gave its nodes. How well detection matched what
the runtime executed is stored with the network (``extra.detection``).
"""
from __future__ import annotations

import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hwnas import __version__, registry
from hwnas.nn.kernels import FusionRules, detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.kernels.rules import KIND as RULES_KIND
from hwnas.nn.kernels.synthetic import MAX_MACS, RESOLUTIONS, describe, sample_network
from hwnas.nn.onnx_graph import import_onnx, to_network
from hwnas.profilers.backends.base import OnnxTarget
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store
from hwnas.ui import progress

log = logging.getLogger(__name__)

SOURCE = "hwnas profile --kernels"
SPACE = "kernels"
#: Kernel-job default protocol: one session (every network is a fresh draw anyway).
KERNEL_PROTOCOL = TimingProtocol(warmup=3, min_repeats=5, max_repeats=20, min_time_ms=2.0, time_budget_s=2.0,
                                 sessions=1)
Advisor = Callable[[Store, int, str, dict[str, Any], int], dict[str, float]]


@dataclass
class KernelJobSummary:
    store: str
    device: str
    device_fingerprint: str
    networks: int
    rounds: int
    measured: int = 0
    skipped: int = 0
    failed: int = 0
    kernels: int = 0
    clean: int = 0
    wall_s: float = 0.0
    complete: bool = False
    rules_measured: bool = False
    weights: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ensure_rules(store: Store, dev_id: int, backend: Any, *, share: float = 0.5, force: bool = False) -> tuple[FusionRules, bool]:
    """The stored rules of this device and backend, measured and stored first if missing."""
    rec = None if force else store.rules(dev_id, backend.name, RULES_KIND)
    if rec is not None:
        return FusionRules.from_dict(rec["data"]), False
    from hwnas.profilers.fusion import measure_rules

    rules = measure_rules(backend, share=share)
    store.add_rules(dev_id, backend.name, RULES_KIND, rules.to_dict(), {"share": share, **rules.meta},
                    {**runtime_versions(), "hwnas": __version__})
    return rules, True


def net_seed(seed: int, rnd: int, i: int) -> int:
    return seed * 1_000_003 + rnd * 100_000 + i


class KernelJob:
    """Build, then :meth:`run`. ``networks`` is the total over all ``rounds``."""

    def __init__(self, store: Store, *, networks: int = 400, rounds: int = 4, seed: int = 0, device: str = "cpu",
                 protocol: TimingProtocol | None = None, timeout_s: float = 120.0, time_limit_s: float | None = None,
                 advisor: Advisor | None = None, show_progress: bool | None = None,
                 max_macs: float = MAX_MACS, max_resolution: int = RESOLUTIONS[-1],
                 weights: dict[str, float] | None = None) -> None:
        self.store, self.n, self.rounds, self.seed = store, networks, max(1, rounds), seed
        self.base_weights = dict(weights or {})  # block-family emphasis for every round
        self.size = {"max_macs": max_macs, "max_resolution": max_resolution}
        self.device, self.protocol = device, protocol or KERNEL_PROTOCOL
        self.timeout_s, self.time_limit_s = timeout_s, time_limit_s
        self.advisor, self.show_progress = advisor, show_progress
        self.backend = registry.build("backend", "onnxruntime", device=device, threads=self.protocol.threads)

    def settings(self) -> dict[str, Any]:
        return {**self.backend.settings(self.protocol), "per_node": "onnxruntime-profiler", "job": SPACE}

    def _round_sizes(self) -> list[int]:
        base, extra = divmod(self.n, self.rounds)
        return [base + (1 if r < extra else 0) for r in range(self.rounds)]

    def run(self) -> KernelJobSummary:
        t0 = time.perf_counter()
        self.backend.check_device()
        dev = device_fingerprint(self.device, self.protocol.threads)
        dev_id = self.store.add_device(dev)
        rules, measured_rules = ensure_rules(self.store, dev_id, self.backend)
        settings = self.settings()
        summary = KernelJobSummary(str(self.store.path), dev.name, dev.fingerprint, self.n, self.rounds,
                                   rules_measured=measured_rules)
        done = self.store.measured(dev_id, "onnxruntime", settings, "network") & \
            self.store.measured_blocks(dev_id, "onnxruntime", settings)
        versions = {**runtime_versions(), "hwnas": __version__}
        client = WorkerClient({"backend": "onnxruntime", "device": self.device, "options": {},
                               "protocol": self.protocol.to_dict(), "imports": [], "energy": False})
        disable = None if self.show_progress is None else not self.show_progress
        bar = progress(total=self.n, desc="kernels", disable=disable, unit="net")
        try:
            for rnd, size in enumerate(self._round_sizes()):
                weights = self.advisor(self.store, dev_id, "onnxruntime", settings, rnd) \
                    if self.advisor is not None and rnd > 0 else {}
                for b, w in self.base_weights.items():
                    weights[b] = weights.get(b, 1.0) * w
                summary.weights.append(weights)
                for i in range(size):
                    if self.time_limit_s is not None and time.perf_counter() - t0 > self.time_limit_s:
                        return summary
                    self._one(client, dev_id, rules, settings, versions, rnd, net_seed(self.seed, rnd, i), weights,
                              done, summary)
                    bar.update(1)
            summary.complete = True
            return summary
        finally:
            bar.close()
            client.close()
            summary.wall_s = round(time.perf_counter() - t0, 2)

    def _one(self, client: WorkerClient, dev_id: int, rules: FusionRules, settings: dict[str, Any],
             versions: dict[str, Any], rnd: int, seed: int, weights: dict[str, float], done: set[str],
             summary: KernelJobSummary) -> None:
        net = sample_network(seed, weights, **self.size)
        model = import_onnx(net.data, name=f"kernels seed {seed}")
        spec = to_network(model.graph)
        if spec.hash in done:
            summary.skipped += 1
            return
        kg = detect(model.graph, rules)
        target = OnnxTarget(model.data, (("x", net.input_shape, 1),), spec.hash)
        with tempfile.TemporaryDirectory(prefix="hwnas-kernels-") as tmp:
            path = str(Path(tmp) / "net.onnx")
            Path(path).write_bytes(model.data)
            reply = client.request("onnx", {"target": target.to_spec(path), "per_node": True}, self.timeout_s)
        arch = {**describe(net), "round": rnd, "weights": weights}
        self.store.add_network(spec, space=SPACE, arch=arch)
        rows = self._rows(kg, spec.hash, reply, settings, versions, arch, summary)
        self.store.add_measurements(dev_id, rows)  # one transaction: the network and its kernels
        done.add(spec.hash)

    def _rows(self, kg: Any, net_hash: str, reply: dict[str, Any], settings: dict[str, Any],
              versions: dict[str, Any], arch: dict[str, Any], summary: KernelJobSummary) -> list[Measurement]:
        if not reply.get("ok"):
            summary.failed += 1
            summary.errors.append(str(reply.get("error"))[:300])
            return [Measurement("network", net_hash, "onnxruntime", settings, (), str(reply.get("error")),
                                versions=versions, source=SOURCE, extra={"job": SPACE, **arch})]
        res = reply["result"]
        per, report = kernel_samples(kg, res["profile"])
        clean = not (report["untraced"] or report["kernels_without_time"] or report["unpredicted_reorders"])
        detection = {"clean": clean, "untraced": len(report["untraced"]), "missing_reorders": len(report["missing_reorders"]),
                     "unpredicted_reorders": len(report["unpredicted_reorders"]),
                     "kernels_without_time": len(report["kernels_without_time"])}
        # The executed graph with per-node medians: enough to attribute the times again,
        # from the regenerated network (seed + weights), if detection improves later.
        executed = [[n["name"], n["op_type"], n["inputs"], n["outputs"], round(statistics.median(n["samples_ms"]), 6)]
                    for n in res["profile"]["nodes"]]
        rows = [Measurement("network", net_hash, "onnxruntime", settings, tuple(res["samples_ms"]), versions=versions,
                            source=SOURCE, extra={"job": SPACE, **arch, "detection": detection,
                                                  "kernels": len(kg.kernels), "runs": res["profile"]["runs"],
                                                  "executed": executed})]
        for pos, k in enumerate(kg.kernels):
            if pos not in per:
                continue
            self.store.add_primitive(k.prim)
            rows.append(Measurement("block", k.prim.key, "onnxruntime", settings, tuple(per[pos]), network=net_hash,
                                    position=pos, versions=versions, source=SOURCE))
        summary.measured += 1
        summary.kernels += len(rows) - 1
        summary.clean += int(clean)
        return rows


def profile_kernels(store: Store, *, networks: int = 400, rounds: int = 4, seed: int = 0, device: str = "cpu",
                    protocol: TimingProtocol | None = None, timeout_s: float = 120.0,
                    time_limit_s: float | None = None, advisor: Advisor | None = None,
                    show_progress: bool | None = None, **size: Any) -> KernelJobSummary:
    """Run (or resume) the kernel job; an ``advisor`` (the caller passes
    :func:`hwnas.cost_models.kernel_fit.advise_weights`: profilers sit below cost models and
    never import them) draws later rounds where the predictors fitted on earlier rounds err
    most; without one, every round draws block families evenly."""
    return KernelJob(store, networks=networks, rounds=rounds, seed=seed, device=device, protocol=protocol,
                     timeout_s=timeout_s, time_limit_s=time_limit_s, advisor=advisor,
                     show_progress=show_progress, **size).run()


def measure_fusion_rules(store: Store, *, device: str = "cpu", threads: int = 1, share: float = 0.5) -> dict[str, Any]:
    """Measure this device's rules again and store them (newest rules win)."""
    backend = registry.build("backend", "onnxruntime", device=device, threads=threads)
    backend.check_device()
    dev = device_fingerprint(device, threads)
    dev_id = store.add_device(dev)
    t0 = time.perf_counter()
    rules, _ = ensure_rules(store, dev_id, backend, share=share, force=True)
    return {"store": str(store.path), "device": dev.name, "device_fingerprint": dev.fingerprint,
            "wall_s": round(time.perf_counter() - t0, 2), "block": rules.block, "fused": rules.fused_pairs(),
            "pairs": rules.pairs, "modes": rules.modes, "conv": rules.conv}
