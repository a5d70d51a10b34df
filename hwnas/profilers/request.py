"""One typed request for every profiling job (a space, the kernel job, one model).

Why: the same fifteen settings used to travel command line -> api -> job as keyword
arguments, each hop repeating their defaults, and each job spelling its own. Now the
command line builds one :class:`ProfileRequest`, validated when it is made (one line
naming the option), and every job reads what it needs from it. What only one job has
(the kernel job's sampling, the model to profile) is its own small record beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hwnas import registry
from hwnas.errors import ConfigError
from hwnas.profilers.timing import TimingProtocol

__all__ = ["MAX_NETWORKS", "ProfileRequest", "check_networks", "tuning_dir"]

#: Most sampled networks one job measures (a typo of a few zeros must not hang the job).
MAX_NETWORKS = 100_000
DEVICES = ("cpu", "gpu")


def check_networks(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NETWORKS:
        raise ConfigError(f"networks: expected an integer in 0..{MAX_NETWORKS}, got {str(n)[:30]}")
    return n


def tuning_dir(store: str | Path) -> Path:
    """Where TVM's MetaSchedule database for a store lives (next to the store)."""
    p = Path(store).resolve()
    return p.parent / (p.stem + ".tvm-tuning")


def _non_negative_int(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{name}: expected an integer >= 0, got {v!r}")


def _number(name: str, v: Any, *, signed: bool = False) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (v < 0 and not signed):
        raise ConfigError(f"{name}: expected a finite number{'' if signed else ' >= 0'}, got {v!r}")


@dataclass(frozen=True)
class ProfileRequest:
    """What a profiling job is asked to do; the command-line flags, one to one.

    ``protocol`` / ``timeout_s`` None mean the job's own default (the kernel job times
    with one session, a model gets a longer timeout). ``deadline_s`` stops a job cleanly
    between two items once that many seconds have passed; a rerun resumes. ``networks``
    and ``seed``: how many random networks to draw (sampled from a space, or the kernel
    job's synthetic ones) and from which seed.
    """

    backends: tuple[str, ...] = ("onnxruntime",)
    device: str = "cpu"
    protocol: TimingProtocol | None = None
    timeout_s: float | None = None
    networks: int = 0
    seed: int = 0
    retry_failed: bool = False
    retry_flagged: bool = False
    deadline_s: float | None = None
    tune_trials: int = 0
    gpu_index: int = 0
    energy: bool = True
    imports: tuple[str, ...] = ()
    show_progress: bool | None = None
    ray_address: str | None = None
    device_resource: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "backends", tuple(self.backends))
        object.__setattr__(self, "imports", tuple(self.imports))
        if not self.backends or not all(isinstance(b, str) and b for b in self.backends):
            raise ConfigError(f"backend: expected one or more backend names, got {list(self.backends)!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"device: expected one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.protocol is not None and not isinstance(self.protocol, TimingProtocol):
            raise ConfigError(f"protocol: expected a TimingProtocol, got {type(self.protocol).__name__}")
        check_networks(self.networks)
        for name in ("seed", "tune_trials", "gpu_index"):
            _non_negative_int(name.replace("_", "-"), getattr(self, name))
        _number("timeout", self.timeout_s, signed=True)  # its lower bound depends on the job's protocol
        _number("deadline", self.deadline_s)
        if self.ray_address and not self.device_resource:
            raise ConfigError("--ray-address: name the farm's devices with --device-resource NAME "
                              "(a custom resource of the Ray nodes)")

    def timing(self, default: TimingProtocol | None = None) -> TimingProtocol:
        """The protocol asked for, else the job's ``default``, else the standard one."""
        return self.protocol or default or TimingProtocol()

    def timeout(self, default: float) -> float:
        return float(self.timeout_s) if self.timeout_s is not None else default

    def backend_options(self, store: str | Path | None) -> dict[str, dict[str, Any]]:
        """Per-backend options implied by the request: TVM's tuning (its database beside
        ``store``, so a rerun reuses it) and, on a GPU, which GPU the GPU-capable backends
        time on."""
        return backend_options(self.backends, store, self.tune_trials,
                               self.gpu_index if self.device == "gpu" else None)


def backend_options(backends: Sequence[str], store: str | Path | None, tune_trials: int = 0,
                    gpu_index: int | None = None) -> dict[str, dict[str, Any]]:
    """Per-backend options implied by a job's settings (``gpu_index``: which GPU the
    GPU-capable backends time on)."""
    opts: dict[str, dict[str, Any]] = {}
    if "tvm" in backends:
        where = str(tuning_dir(store)) if tune_trials and store is not None else None
        opts["tvm"] = {"tune_trials": tune_trials, "tuning_dir": where}
    if gpu_index is not None:
        for b in backends:
            if getattr(registry.get("backend", b), "takes_gpu_index", False):
                opts.setdefault(b, {})["gpu_index"] = gpu_index
    return opts

