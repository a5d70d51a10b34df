"""The backend interface: turn a Primitive or NetworkSpec into something runnable, time it.

A backend is built with a device (``cpu`` / ``gpu``), a thread count and its own
options. :meth:`Backend.prepare` does the expensive part once (export, session
creation or compilation) and returns a :class:`Prepared` runnable bound to a fixed,
deterministic input; :meth:`Backend.measure` then applies the timing protocol and the
energy meters. Everything that makes two measurements comparable goes into
:meth:`Backend.settings`, which is stored with every row so resume and table lookups
never mix, say, tuned and untuned TVM.

Contract (checked for every registered backend by the suite in ``testing/backend.py``):

* built as ``cls(device="cpu", threads=1, **options)``; ``name`` equals the registry
  name (it is what the store files rows under);
* :meth:`Backend.measure` of a small primitive and of a small network returns positive,
  finite samples; :meth:`Backend.settings` is JSON-able and holds the timing protocol,
  the device and the backend name; :meth:`Backend.versions` maps names to strings;
* :meth:`Prepared.output` is the target's output as an array of the target's output
  shape (backends with ``in_all`` set also agree numerically with eager torch);
* a missing optional dependency raises :class:`~hwnas.errors.DependencyError` from
  :meth:`Backend.check_device` (the suite then skips the backend);
* :meth:`Backend.example` gives the options the suite builds it with.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwnas.errors import ConfigError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.timing import TimingProtocol, measure

log = logging.getLogger(__name__)

DEVICES = ("cpu", "gpu")

#: ONNX element types hwnas can feed, and the NumPy type of each.
_ELEM_TYPES: dict[int, str] = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}


@dataclass(frozen=True)
class OnnxTarget:
    """A whole ONNX model run as it is (``profile --onnx``/``--torch``, the kernel job).

    ``inputs`` are (name, static shape, ONNX element type); the batch is part of the
    shape, so a protocol's ``batch`` does not apply. Crosses the worker pipe as a file.
    """

    data: bytes
    inputs: tuple[tuple[str, tuple[int, ...], int], ...]
    label: str = "model"

    @property
    def ident(self) -> str:
        import hashlib

        return hashlib.sha256(self.data).hexdigest()[:16]

    def feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Deterministic inputs: standard normal floats, zero integers and booleans."""
        rng = np.random.default_rng(seed)
        out: dict[str, np.ndarray] = {}
        for name, shape, elem in self.inputs:
            dtype = _ELEM_TYPES.get(int(elem))
            if dtype is None:
                raise ConfigError(f"{self.label}: input {name!r} has ONNX element type {elem}, which hwnas cannot feed")
            out[name] = rng.standard_normal(shape).astype(dtype) if dtype.startswith("float") else \
                np.zeros(shape, dtype=dtype)
        return out

    def to_spec(self, path: str) -> dict[str, Any]:
        return {"path": path, "label": self.label, "inputs": [[n, list(s), int(t)] for n, s, t in self.inputs]}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "OnnxTarget":
        from pathlib import Path

        data = Path(spec["path"]).read_bytes()
        return cls(data, tuple((str(n), tuple(int(d) for d in s), int(t)) for n, s, t in spec["inputs"]),
                   str(spec.get("label", "model")))


@dataclass(frozen=True)
class TorchTarget:
    """A torch module made by a factory (``module:function``), for the eager torch backend."""

    factory: str
    input_shape: tuple[int, ...]
    options: tuple[tuple[str, Any], ...] = ()

    def to_spec(self) -> dict[str, Any]:
        return {"factory": self.factory, "input_shape": list(self.input_shape), "options": dict(self.options)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "TorchTarget":
        return cls(str(spec["factory"]), tuple(int(d) for d in spec["input_shape"]),
                   tuple(sorted(dict(spec.get("options") or {}).items())))


Target = Primitive | NetworkSpec | OnnxTarget | TorchTarget


class ExportCache:
    """The ONNX bytes of the last few targets a backend exported, keyed by the target's
    content (a primitive's canonical key, a network's content hash) and the batch.

    Why: a measurement prepares ``sessions`` fresh sessions of one target, and exporting
    (a traced forward pass) cost more than the timed runs themselves — 3 exports per
    primitive were ~45% of ``hwnas profile --space mbv2``. The export is deterministic
    (seeded weights), so a fresh session from the cached bytes is the same measurement;
    the sessions stay independent. Any change of the target changes its key, so a
    changed primitive is exported anew; bounded, so a long job's memory stays flat.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.hits = 0
        self._items: dict[tuple[str, int], bytes] = {}

    @staticmethod
    def key(target: Primitive | NetworkSpec, batch: int) -> tuple[str, int]:
        return (f"primitive {target.key}" if isinstance(target, Primitive) else f"network {target.hash}", batch)

    def get(self, target: Primitive | NetworkSpec, batch: int, export: Callable[[], bytes]) -> tuple[bytes, bool]:
        """(ONNX bytes, whether they came from the cache); ``export()`` makes them on a miss."""
        k = self.key(target, batch)
        if k in self._items:
            self.hits += 1
            self._items[k] = self._items.pop(k)  # most recently used last
            return self._items[k], True
        data = export()
        self._items[k] = data
        while len(self._items) > self.size:
            self._items.pop(next(iter(self._items)))
        return data, False


@dataclass
class Prepared:
    """A runnable bound to one input.

    ``run`` performs one inference; ``output`` returns the result as a NumPy array (for
    cross-backend checks); ``sync`` waits for the device; ``repeat_timer`` may replace
    the host clock (CUDA events). ``overhead_s`` records export/compile time by stage.
    """

    run: Callable[[], Any]
    output: Callable[[], np.ndarray]
    sync: Callable[[], None] | None = None
    repeat_timer: Callable[[Callable[[], Any], int], float] | None = None
    overhead_s: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackendResult:
    """What one measurement produced (JSON-friendly, crosses the worker pipe)."""

    samples_ms: list[float]
    number: int
    stable: bool
    overhead_s: dict[str, float]
    energy_mj: float | None = None
    power_w: float | None = None
    energy_source: str | None = None
    session_medians_ms: list[float] | None = None
    #: the protocol's estimator on the pooled samples, whether it is flagged, and why
    estimate_ms: float | None = None
    flagged: bool | None = None
    evidence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Backend:
    """Base class; subclasses set ``name``, implement ``prepare`` and may override
    ``check_device``, ``settings`` and ``versions``."""

    name: str = "backend"
    #: Whether ``--backend all`` includes this backend (fakes and stand-ins say no).
    in_all: bool = True
    #: Whether the backend accepts the ``gpu_index`` option (``hwnas profile --gpu-index``).
    takes_gpu_index: bool = False

    def __init__(self, device: str = "cpu", threads: int = 1, **options: Any) -> None:
        if device not in DEVICES:
            raise ConfigError(f"device: expected one of {', '.join(DEVICES)}, got {device!r}")
        if threads < 1:
            raise ConfigError(f"threads: must be >= 1, got {threads}")
        self.device = device
        self.threads = threads
        self.options = self.parse_options(options)

    # -- to implement --------------------------------------------------------------------
    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Options (besides device and threads) for a small, quick instance in the contract
        suite; files it needs go under ``tmp_dir``. Default: none, since every backend
        must build without options."""
        return {}

    def parse_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate backend-specific options (default: none accepted)."""
        if options:
            raise ConfigError(f"backend {self.name}: unknown option(s) {', '.join(sorted(options))}")
        return {}

    def check_device(self) -> None:
        """Raise DependencyError (one line, naming what to install) if the device cannot be driven."""

    @property
    def gpu_index(self) -> int:
        """The GPU a ``gpu`` backend times on (option ``gpu_index``, default 0)."""
        return int(self.options.get("gpu_index", 0))

    def parse_gpu_index(self, options: dict[str, Any]) -> dict[str, Any]:
        """Accept only ``gpu_index`` (an integer >= 0): the option every GPU-capable backend takes."""
        options = dict(options)
        idx = options.pop("gpu_index", 0)
        if options:
            raise ConfigError(f"backend {self.name}: unknown option(s) {', '.join(sorted(options))}")
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ConfigError(f"backend {self.name}: gpu_index must be an integer >= 0, got {idx!r}")
        return {"gpu_index": idx} if idx else {}

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        raise NotImplementedError

    def backend_settings(self) -> dict[str, Any]:
        """Backend options that change timings (tuned/untuned, providers, target)."""
        return {}

    def versions(self) -> dict[str, str]:
        return {}

    # -- generic -------------------------------------------------------------------------
    def settings(self, protocol: TimingProtocol) -> dict[str, Any]:
        """The full settings stored with (and hashed into) every measurement."""
        return {"timing": protocol.to_dict(), "device": self.device, "backend": self.name,
                "backend_options": self.backend_settings()}

    def measure(self, target: Target, protocol: TimingProtocol, *, with_energy: bool = True) -> BackendResult:
        """Prepare ``target`` and time it, ``protocol.sessions`` times from a fresh
        preparation each; samples are pooled, the protocol's estimator gives the value,
        and the interference evidence goes with it. Energy from RAPL / NVML when readable."""
        from hwnas.profilers import energy, interference

        samples: list[float] = []
        cpu: list[float] = []
        overhead: dict[str, float] = {}
        session_medians: list[float] = []
        session_estimates: list[float] = []
        stable, number, calls, timing_s, prep_total = True, 1, 0, 0.0, 0.0
        meter = energy.EnergyMeter(self.device, gpu_index=self.gpu_index) if with_energy else None
        energy_j, energy_s, source = 0.0, 0.0, None
        before = interference.snapshot()
        for _ in range(protocol.sessions):
            t0 = time.perf_counter()
            prepared = self.prepare(target, protocol.batch)
            prep_total += time.perf_counter() - t0
            for stage, secs in prepared.overhead_s.items():  # export / compile stages
                overhead[stage] = overhead.get(stage, 0.0) + secs
            host_timed = prepared.repeat_timer is None and protocol.threads == 1
            if meter is not None:
                meter.start()
            res = measure(prepared.run, protocol, sync=prepared.sync, repeat_timer=prepared.repeat_timer,
                          cpu_timer=time.thread_time if host_timed else None)
            reading = meter.stop() if meter is not None else None
            if reading is not None and reading.energy_j is not None:
                energy_j += reading.energy_j
                energy_s += reading.seconds
                source = reading.source
            samples += res.samples_ms
            cpu += res.cpu_ms
            session_medians.append(statistics.median(res.samples_ms))
            session_estimates.append(protocol.estimate(res.samples_ms, res.cpu_ms))
            stable = stable and res.stable
            number, calls, timing_s = res.number, calls + res.total_calls, timing_s + res.wall_s
        overhead["timing"] = timing_s
        overhead["total"] = prep_total + timing_s
        out = BackendResult(samples, number, stable, overhead)
        out.session_medians_ms = session_medians
        cpu = cpu if len(cpu) == len(samples) else []
        out.estimate_ms = protocol.estimate(samples, cpu)
        out.evidence = interference.evidence(samples, cpu, session_estimates, out.estimate_ms,
                                             interference.between(before, interference.snapshot()))
        out.flagged = bool(out.evidence["flags"])
        if source is not None and timing_s > 0:
            out.energy_mj = energy_j * 1000.0 / max(calls, 1)
            out.power_w = energy_j / energy_s if energy_s > 0 else None
            out.energy_source = source
        return out
