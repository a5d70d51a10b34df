"""``hwnas profile --kernels``: sample kernels in random networks, time them in context,
store every kernel of every network; resumable, in rounds, within a time limit.

Why rounds: adaptive sampling. Round 0 draws block families evenly; before each later
round the caller's ``advisor`` (kernel predictors fitted on what the store holds from
earlier rounds, judged on held-out networks) says, per block family, how wrong the
predictors still are. A family whose held-out error is under the stop rule
(:class:`StopRule`) is no longer drawn, the others are drawn in proportion to their error,
and the job ends early once every family is accurate: the time goes where the predictor
is still wrong, so a new device's predictor is built in minutes, not a quarter of an hour.
Each round's networks depend only on the seed and on earlier rounds, so a killed job
rerun with the same options draws the same networks and skips those already measured;
``time_limit_s`` ends a run between two networks, so long jobs are split into pieces.

Each network is one store item: the op-level graph (``networks``, space ``kernels``),
its end-to-end time (kind ``network``) and one ``block`` row per detected kernel with
the per-run times the runtime's profiler gave its nodes. How well detection matched what
the runtime executed is stored with the network (``extra.detection``).
"""
from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from hwnas import __version__, registry
from hwnas.errors import ConfigError
from hwnas.nn.kernels import FusionRules, detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.kernels.rules import KIND as RULES_KIND
from hwnas.nn.kernels.synthetic import BLOCKS, MAX_MACS, RESOLUTIONS, SAMPLER_VERSION, describe, sample_network
from hwnas.nn.onnx_graph import import_onnx, to_network
from hwnas.profilers.backends.base import OnnxTarget
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.jobs import LEASE_GRACE_S, JobItem, LeasedItems
from hwnas.profilers.kernel_rounds import RoundAdvice, StopRule
from hwnas.profilers.messages import WorkerReply, worker_config
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store, settings_hash
from hwnas.store.claims import ItemKey, item_stored
from hwnas.ui import progress

log = logging.getLogger(__name__)

SOURCE = "hwnas profile --kernels"
SPACE = "kernels"
#: Kernel-job default protocol: one session (every network is a fresh draw anyway).
KERNEL_PROTOCOL = TimingProtocol(warmup=3, min_repeats=5, max_repeats=20, min_time_ms=2.0, time_budget_s=2.0,
                                 sessions=1)
#: The kernel job's per-item timeout when the request gives none.
DEFAULT_TIMEOUT_S = 120.0
#: ``advisor(store, dev_id, backend, settings, round, stop=StopRule)`` -> a :class:`RoundAdvice`
#: as a plain mapping (``weights``, ``families``), or a plain mapping of block weights.
Advisor = Callable[..., Mapping[str, Any]]


@dataclass
class KernelJobSummary:
    store: str
    device: str
    device_fingerprint: str
    networks: int
    rounds: int
    rounds_run: int = 0
    measured: int = 0
    skipped: int = 0
    failed: int = 0
    kernels: int = 0
    clean: int = 0
    wall_s: float = 0.0
    complete: bool = False
    stopped_early: bool = False
    rules_measured: bool = False
    advice_s: float = 0.0
    stop: dict[str, Any] = field(default_factory=dict)
    weights: list[dict[str, float]] = field(default_factory=list)
    #: block family -> the last judgement (networks, mape, accurate) and ``stopped_round``
    families: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ensure_rules(store: Store, dev_id: int, backend: Any, *, share: float = 0.5, force: bool = False) -> tuple[FusionRules, bool]:
    """The stored rules of this device and backend, measured and stored first if missing.

    Rules stored before the plain-layout pairs existed (``plain:conv>add``: ONNX Runtime
    merges a residual sum into an unaligned, plain-layout convolution too) get those pairs
    measured and stored once: without them every network with such a sum is left out of
    the fits as a detection mismatch (a quarter of the kernel job's networks at sampler v3)."""
    rec = None if force else store.rules(dev_id, backend.name, RULES_KIND)
    if rec is not None:
        rules = FusionRules.from_dict(rec["data"])
        if rules.block <= 0 or any(k.startswith("plain:") for k in rules.pairs):
            return rules, False
        from hwnas.profilers.fusion import measure_plain_pairs

        rules.pairs.update(measure_plain_pairs(backend, rules.block, share=share))
        store.add_rules(dev_id, backend.name, RULES_KIND, rules.to_dict(),
                        {**dict(rec.get("settings") or {}), "plain_pairs_added": True},
                        {**runtime_versions(), "hwnas": __version__})
        return rules, True
    from hwnas.profilers.fusion import measure_rules

    rules = measure_rules(backend, share=share)
    store.add_rules(dev_id, backend.name, RULES_KIND, rules.to_dict(), {"share": share, **rules.meta},
                    {**runtime_versions(), "hwnas": __version__})
    return rules, True


def net_seed(seed: int, rnd: int, i: int) -> int:
    return seed * 1_000_003 + rnd * 100_000 + i


@dataclass(frozen=True)
class KernelSampling:
    """How the kernel job draws its networks, besides the request's ``networks`` (the
    most over all rounds) and ``seed``: ``rounds`` of adaptive sampling (``adaptive``
    False draws all rounds evenly and never stops early), when a family stops (``stop``),
    the size of a network, and a block-family emphasis for every round (``weights``)."""

    rounds: int = 4
    adaptive: bool = True
    max_macs: float = MAX_MACS
    max_resolution: int = RESOLUTIONS[-1]
    weights: Mapping[str, float] = field(default_factory=dict)
    stop: StopRule = field(default_factory=StopRule)

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise ConfigError(f"rounds: expected an integer >= 1, got {self.rounds!r}")


def kernel_protocol(given: TimingProtocol | None) -> TimingProtocol:
    """The kernel job's own protocol (one session: every network is a fresh draw) unless
    a protocol other than the standard one (at the given threads and batch) was asked for."""
    if given is None:
        return KERNEL_PROTOCOL
    defaults = replace(TimingProtocol(), threads=given.threads, batch=given.batch)
    return replace(KERNEL_PROTOCOL, threads=given.threads) if given == defaults else given


@dataclass(frozen=True)
class _Draw:
    """One drawn network: the generated model, its op-level graph, and how it was drawn."""

    net: Any
    model: Any
    spec: Any
    arch: dict[str, Any]


class KernelJob:
    """Build, then :meth:`run`. The request's ``networks`` is the total over all rounds;
    ``deadline_s`` ends a run between two networks (a rerun resumes)."""

    def __init__(self, store: Store, request: ProfileRequest | None = None, sampling: KernelSampling | None = None,
                 *, advisor: Advisor | None = None) -> None:
        self.store, self.request = store, request or ProfileRequest(networks=400)
        self.sampling = sampling or KernelSampling()
        self.n, self.rounds, self.seed = self.request.networks, self.sampling.rounds, self.request.seed
        self.size = {"max_macs": self.sampling.max_macs, "max_resolution": self.sampling.max_resolution}
        self.device, self.protocol = self.request.device, kernel_protocol(self.request.protocol)
        self.timeout_s = self.request.timeout(DEFAULT_TIMEOUT_S)
        self.advisor = advisor
        self.backend = registry.build("backend", "onnxruntime", device=self.device, threads=self.protocol.threads)

    def settings(self) -> dict[str, Any]:
        return {**self.backend.settings(self.protocol), "per_node": "onnxruntime-profiler", "job": SPACE}

    def _round_sizes(self) -> list[int]:
        base, extra = divmod(self.n, self.rounds)
        return [base + (1 if r < extra else 0) for r in range(self.rounds)]

    def _advice(self, dev_id: int, settings: dict[str, Any], rnd: int, summary: KernelJobSummary) -> RoundAdvice:
        """The advisor's judgement before round ``rnd`` (none before round 0), times the
        sampling's own emphasis; records each family's judgement and when it stopped. A
        round already begun (a resumed piece) keeps the advice its networks were drawn with."""
        advice = self._stored_advice(dev_id, settings_hash(settings), rnd)
        if advice is None:
            advice = RoundAdvice({}, {})
            if self.advisor is not None and rnd > 0:
                t0 = time.perf_counter()
                advice = RoundAdvice.of(self.advisor(self.store, dev_id, "onnxruntime", settings, rnd,
                                                     stop=self.sampling.stop))
                summary.advice_s = round(summary.advice_s + time.perf_counter() - t0, 2)
            weights = dict(advice.weights)
            for b, w in self.sampling.weights.items():
                weights[b] = weights.get(b, 1.0) * w
            advice = RoundAdvice(weights, advice.families)
        for b, rec in advice.families.items():
            stopped = summary.families.get(b, {}).get("stopped_round")
            summary.families[b] = {**rec, "stopped_round": (rnd if stopped is None else stopped)
                                   if rec.get("accurate") else None}
        return advice

    def _stored_advice(self, dev_id: int, sh: str, rnd: int) -> RoundAdvice | None:
        """The weights and judgements this job's round ``rnd`` was drawn with, if any of its
        networks (this seed's draws) are stored."""
        seeds = {net_seed(self.seed, rnd, i) for i in range(self._round_sizes()[rnd])}
        for r in self.store.query(device_id=dev_id, backend="onnxruntime", kind="network"):
            x = r["extra"] or {}
            if r["settings_hash"] == sh and x.get("job") == SPACE and x.get("round") == rnd and x.get("seed") in seeds \
                    and _this_sampler(x):
                return RoundAdvice({str(k): float(v) for k, v in dict(x.get("weights") or {}).items()},
                                   {str(k): dict(v) for k, v in dict(x.get("advice") or {}).items()})
        return None

    def _drawn(self, weights: Mapping[str, float]) -> list[str]:
        """The block families a round with ``weights`` can draw."""
        return [b for b in BLOCKS if weights.get(b, 1.0) > 0]

    def _known(self, dev_id: int, sh: str) -> set[tuple[int, str]]:
        """(seed, weights) of the networks this device and settings already measured with
        this sampler version: a resumed piece skips them without generating their ONNX again
        (up to 0.5 s each). Another version's seed drew another network (stored before the
        version was recorded: version 1), so it is not skipped."""
        rows = self.store.query(device_id=dev_id, backend="onnxruntime", kind="network", ok_only=True)
        return {(int(r["extra"]["seed"]), _wkey(r["extra"].get("weights") or {})) for r in rows
                if r["settings_hash"] == sh and (r["extra"] or {}).get("job") == SPACE and "seed" in r["extra"]
                and _this_sampler(r["extra"])}

    def _draws(self, dev_id: int, sh: str, rnd: int, advice: RoundAdvice,
               summary: KernelJobSummary) -> Iterator[JobItem]:
        """This round's networks, drawn lazily (only as far as the job gets)."""
        weights = advice.weights
        known, wkey = self._known(dev_id, sh), _wkey(weights)
        for i in range(self._round_sizes()[rnd]):
            seed = net_seed(self.seed, rnd, i)
            if (seed, wkey) in known:  # the same seed and weights draw the same network: measured
                summary.skipped += 1
                continue
            net = sample_network(seed, weights, **self.size)
            model = import_onnx(net.data, name=f"kernels seed {seed}")
            spec = to_network(model.graph)
            arch = {**describe(net), "round": rnd, "weights": weights,
                    **({"advice": advice.families} if advice.families else {})}
            yield JobItem(ItemKey(dev_id, "onnxruntime", sh, "network", spec.hash), _Draw(net, model, spec, arch),
                          self.timeout_s + LEASE_GRACE_S)

    def run(self) -> KernelJobSummary:
        t0 = time.perf_counter()
        deadline = None if self.request.deadline_s is None else time.monotonic() + self.request.deadline_s
        self.backend.check_device()
        dev = device_fingerprint(self.device, self.protocol.threads)
        dev_id = self.store.add_device(dev)
        rules, measured_rules = ensure_rules(self.store, dev_id, self.backend)
        settings = self.settings()
        summary = KernelJobSummary(str(self.store.path), dev.name, dev.fingerprint, self.n, self.rounds,
                                   rules_measured=measured_rules,
                                   stop={**asdict(self.sampling.stop), "adaptive": self.advisor is not None})
        ctx = _Context(rules, settings, {**runtime_versions(), "hwnas": __version__})
        client = WorkerClient(worker_config(self.backend, self.device, self.protocol, energy=False))
        disable = None if self.request.show_progress is None else not self.request.show_progress
        bar = progress(total=self.n, desc="kernels", disable=disable, unit="net")
        done = partial(item_stored, self.store, blocks=True)
        try:
            for rnd in range(self.rounds):
                if deadline is not None and time.monotonic() > deadline:
                    return summary
                advice = self._advice(dev_id, settings, rnd, summary)
                base = {b: w for b, w in self.sampling.weights.items()}
                weights = advice.weights
                if advice.all_accurate(self._drawn(base)) or not self._drawn(weights):
                    summary.stopped_early = True  # every family accurate: nothing left to learn
                    break
                summary.weights.append(weights)
                summary.rounds_run = rnd + 1
                leases = LeasedItems(self.store, self._draws(dev_id, settings_hash(settings), rnd, advice, summary),
                                     done, deadline=deadline)
                leases.progress = bar
                try:
                    leases.run(lambda it: self._measure(it, client, leases, ctx),
                               lambda _, rows: _tally(summary, rows))
                finally:
                    summary.skipped += leases.elsewhere
                    leases.close()
                if leases.stopped:
                    return summary
            summary.complete = True
            return summary
        finally:
            bar.close()
            client.close()
            summary.wall_s = round(time.perf_counter() - t0, 2)

    def _measure(self, it: JobItem, client: WorkerClient, leases: LeasedItems, ctx: "_Context") -> list[Measurement]:
        d: _Draw = it.obj
        kg = detect(d.model.graph, ctx.rules)
        target = OnnxTarget(d.model.data, (("x", d.net.input_shape, 1),), d.spec.hash)
        with tempfile.TemporaryDirectory(prefix="hwnas-kernels-") as tmp:
            path = str(Path(tmp) / "net.onnx")
            Path(path).write_bytes(d.model.data)
            leases.renew(it, self.timeout_s)
            reply = client.request("onnx", {"target": target.to_spec(path), "per_node": True}, self.timeout_s)
        self.store.add_network(d.spec, space=SPACE, arch=d.arch)
        return self._rows(kg, d.spec.hash, reply, ctx, d.arch)

    def _rows(self, kg: Any, net_hash: str, reply: WorkerReply, ctx: "_Context",
              arch: dict[str, Any]) -> list[Measurement]:
        settings, versions = ctx.settings, ctx.versions
        if not reply.ok:
            return [Measurement("network", net_hash, "onnxruntime", settings, (), str(reply.error),
                                versions=versions, source=SOURCE, extra={"job": SPACE, **arch})]
        res = dict(reply.result or {})
        per, report = kernel_samples(kg, res["profile"])
        clean = not (report["untraced"] or report["kernels_without_time"] or report["unpredicted_reorders"])
        detection = {"clean": clean, "untraced": len(report["untraced"]), "missing_reorders": len(report["missing_reorders"]),
                     "unpredicted_reorders": len(report["unpredicted_reorders"]),
                     "kernels_without_time": len(report["kernels_without_time"])}
        # The executed graph with per-node medians: enough to attribute the times again,
        # from the regenerated network (seed + weights), if detection improves later.
        executed = [[n["name"], n["op_type"], n["inputs"], n["outputs"], round(statistics.median(n["samples_ms"]), 6)]
                    for n in res["profile"]["nodes"]]
        rows = [Measurement("network", net_hash, "onnxruntime", settings, reply.samples_ms, versions=versions,
                            source=SOURCE, extra={"job": SPACE, **arch, "detection": detection,
                                                  "kernels": len(kg.kernels), "runs": res["profile"]["runs"],
                                                  "executed": executed})]
        for pos, k in enumerate(kg.kernels):
            if pos not in per:
                continue
            self.store.add_primitive(k.prim)
            rows.append(Measurement("block", k.prim.key, "onnxruntime", settings, tuple(per[pos]), network=net_hash,
                                    position=pos, versions=versions, source=SOURCE))
        return rows


@dataclass(frozen=True)
class _Context:
    """What every network of one kernel job is measured and stored with."""

    rules: FusionRules
    settings: dict[str, Any]
    versions: dict[str, Any]


def _this_sampler(arch: Mapping[str, Any]) -> bool:
    """Whether a stored draw came from this sampler version (draws stored before versions
    were recorded are version 1): only then does its seed name the network drawn now."""
    return int(arch.get("sampler", 1)) == SAMPLER_VERSION


def _wkey(weights: Mapping[str, Any]) -> str:
    """A draw's block weights as a comparable key (as stored in the network's ``arch``)."""
    return json.dumps({str(k): float(v) for k, v in weights.items()}, sort_keys=True)


def _tally(summary: KernelJobSummary, rows: list[Measurement]) -> None:
    """Count one stored network in the summary."""
    head = rows[0]
    if head.error is not None:
        summary.failed += 1
        summary.errors.append(head.error[:300])
        return
    summary.measured += 1
    summary.kernels += len(rows) - 1
    summary.clean += int(bool(head.extra.get("detection", {}).get("clean")))


def profile_kernels(store: Store, request: ProfileRequest | None = None, sampling: KernelSampling | None = None,
                    advisor: Advisor | None = None) -> KernelJobSummary:
    """Run (or resume) the kernel job; ``sampling.adaptive`` draws later rounds where the
    caller's ``advisor`` says the predictors err most, stops drawing the families it judges
    accurate (``sampling.stop``) and ends the job early when all are. The advice is a
    cost-model decision, so it is passed in from above
    (``hwnas.cost_models.kernel_fit.advise_round``): profilers never import cost models."""
    sampling = sampling or KernelSampling()
    if sampling.adaptive and advisor is None:
        raise ConfigError("kernel job: adaptive sampling needs an advisor (e.g. "
                          "hwnas.cost_models.kernel_fit.advise_round), or KernelSampling(adaptive=False)")
    return KernelJob(store, request, sampling, advisor=advisor if sampling.adaptive else None).run()


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
