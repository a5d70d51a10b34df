"""Speed probe: how fast this machine runs right now, on a fixed set of random networks.

Why: a kernel predictor is a measurement of one machine at the times its kernel job ran,
but the machine it is used on runs at another speed. Measured on the 2-core VM the shipped
predictor was built on: the same kind of random network ran 3.5-4% slower in one
kernel-job session than in the others, and fresh random networks measured a day after the
build ran 1-2.5% slower than the predictor said; another host of the same class can differ
by more. The probe times ``PROBE_NETWORKS`` random networks of the kernel job's own kind
(drawn from seeds no kernel job uses, so never training data) end to end with the
standard protocol, so that a predictor's prediction of the same networks gives this
machine's speed factor now (:mod:`hwnas.cost_models.calibration`). It takes a few seconds.

The networks are regenerated from their seeds by the current sampler, so a probe is
comparable with another probe of the same ``SAMPLER_VERSION`` (both are recorded).
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from hwnas.errors import ConfigError
from hwnas.nn.kernels.synthetic import RESOLUTIONS, SAMPLER_VERSION, SampledNet, sample_network
from hwnas.profilers.timing import TimingProtocol

#: Networks in one probe: enough that the predictor's own error on any one of them
#: (~8% on held-out random networks) averages out to ~1.5% in the median.
PROBE_NETWORKS = 32
#: Size cap of a probe network (multiply-adds): ~0.2-10 ms each on a 1-thread CPU, so the
#: whole probe is a few seconds, and sizes span where most deployed models' kernels run.
PROBE_MAX_MACS = 2e8
#: Seeds of the probe networks: far above any kernel job's (``net_seed`` stays below 1e8
#: for job seeds under 100), so no probe network is a training network.
PROBE_SEED0 = 900_000_000
#: Block-family weights of the probe's draw (None: the kernel job's own, every family alike).
PROBE_WEIGHTS: Mapping[str, float] | None = None


@dataclass(frozen=True)
class ProbeNet:
    """One probe network: its seed, ONNX bytes and input shape."""

    seed: int
    data: bytes
    input_shape: tuple[int, int, int, int]


@dataclass
class ProbeRun:
    """One probe's measurement: each network's end-to-end time (the protocol's estimate)."""

    seeds: list[int]
    ms: list[float]
    wall_s: float
    when: str
    sampler_version: int = SAMPLER_VERSION
    protocol: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProbeRun":
        try:
            return cls([int(s) for s in data["seeds"]], [float(v) for v in data["ms"]], float(data["wall_s"]),
                       str(data["when"]), int(data.get("sampler_version", SAMPLER_VERSION)),
                       dict(data.get("protocol") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"speed probe record: expected seeds, ms, wall_s and when ({exc})") from None


def probe_networks(n: int | None = None, *, max_macs: float | None = None, max_resolution: int | None = None,
                   weights: Mapping[str, float] | None = None) -> list[ProbeNet]:
    """The probe's networks (deterministic: the same seeds draw the same networks); the
    module's constants unless given (a smaller probe for quick trials)."""
    n = PROBE_NETWORKS if n is None else n
    if n < 1:
        raise ConfigError(f"speed probe: networks must be >= 1, got {n}")
    size = {"max_macs": PROBE_MAX_MACS if max_macs is None else max_macs,
            "max_resolution": RESOLUTIONS[-1] if max_resolution is None else max_resolution}
    out = []
    for i in range(n):
        net: SampledNet = sample_network(PROBE_SEED0 + i, PROBE_WEIGHTS if weights is None else weights, **size)
        out.append(ProbeNet(net.seed, net.data, net.input_shape))
    return out


def run_probe(nets: list[ProbeNet], *, threads: int = 1, protocol: TimingProtocol | None = None,
              progress: Callable[[int, int], None] | None = None) -> ProbeRun:
    """Time every probe network end to end on ONNX Runtime's CPU provider (the standard
    protocol unless another is given: what ``hwnas profile --onnx`` measures)."""
    from hwnas.profilers.backends.base import OnnxTarget
    from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend

    proto = protocol or TimingProtocol(threads=threads)
    backend = OnnxRuntimeBackend("cpu", threads=proto.threads)
    t0 = time.perf_counter()
    ms: list[float] = []
    for i, p in enumerate(nets):
        target = OnnxTarget(p.data, (("x", p.input_shape, 1),), f"probe {p.seed}")
        res = backend.measure(target, proto, with_energy=False)
        ms.append(float(res.estimate_ms if res.estimate_ms is not None else proto.estimate(res.samples_ms, None)))
        if progress is not None:
            progress(i + 1, len(nets))
    when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return ProbeRun([p.seed for p in nets], ms, round(time.perf_counter() - t0, 2), when, protocol=proto.to_dict())
