"""The records a cost store holds: the device a measurement was made on, and the
measurement itself. Validation happens in the constructors, so a bad row never
reaches the database."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from hwnas.errors import ValidationError

#: What a measurement is of.
KINDS = ("primitive", "network", "block")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Device:
    """Fingerprint of the hardware and software a measurement was made on.

    Two measurements are comparable only on the same fingerprint; the store never
    mixes devices silently. ``name`` is a human label (``cpu``, ``zcu102-dpu-b4096``).
    """

    name: str
    kind: str = "cpu"                       # cpu | gpu | offline
    cpu_model: str | None = None
    cores: int | None = None
    threads: int | None = None
    governor: str | None = None
    gpu_name: str | None = None
    gpu_driver: str | None = None
    runtimes: tuple[tuple[str, str], ...] = ()
    precision: str = "fp32"
    notes: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValidationError(f"Device.name: expected a non-empty string, got {self.name!r}")
        rt = self.runtimes
        if isinstance(rt, Mapping):
            rt = tuple(rt.items())
        object.__setattr__(self, "runtimes", tuple(sorted((str(k), str(v)) for k, v in rt)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["runtimes"] = dict(self.runtimes)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Device":
        kw = dict(data)
        kw["runtimes"] = tuple(dict(kw.get("runtimes") or {}).items())
        return cls(**kw)

    @property
    def fingerprint(self) -> str:
        return sha(canonical_json(self.to_dict()), 16)


@dataclass(frozen=True)
class Measurement:
    """One timing (or failure) of a primitive, a network, or a block inside a network."""

    kind: str
    target: str
    backend: str
    settings: Mapping[str, Any]
    samples_ms: tuple[float, ...] = ()
    error: str | None = None
    energy_mj: float | None = None
    power_w: float | None = None
    network: str | None = None
    position: int | None = None
    versions: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Summary statistics for offline ingests that only report aggregates.
    median_override: float | None = None
    #: The robust latency estimate of the timing protocol's estimator (what cost models
    #: use); None means the median. ``evidence`` says how the samples were taken
    #: (interference signals) and ``flagged`` whether they were disturbed.
    estimate_ms: float | None = None
    flagged: bool | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"Measurement.kind: expected one of {KINDS}, got {self.kind!r}")
        samples = tuple(float(s) for s in self.samples_ms)
        for s in samples:
            if not math.isfinite(s) or s < 0:
                raise ValidationError(f"Measurement.samples_ms: bad sample {s!r} for {self.target}")
        object.__setattr__(self, "samples_ms", samples)
        if self.error is None and not samples and self.median_override is None:
            raise ValidationError(f"Measurement of {self.target}: no samples and no error")
        for name in ("estimate_ms", "median_override"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(float(v)) or float(v) < 0):
                raise ValidationError(f"Measurement.{name}: expected a finite number >= 0, got {v!r} for {self.target}")
        if self.kind == "block" and (self.network is None or self.position is None):
            raise ValidationError("Measurement: a block measurement needs network and position")

    @property
    def median_ms(self) -> float | None:
        if self.median_override is not None:
            return float(self.median_override)
        return statistics.median(self.samples_ms) if self.samples_ms else None

    @property
    def latency_ms(self) -> float | None:
        """What cost models use: the estimator's value, else the median."""
        if self.error is not None:
            return None
        return float(self.estimate_ms) if self.estimate_ms is not None else self.median_ms

    @property
    def mean_ms(self) -> float | None:
        if self.samples_ms:
            return statistics.fmean(self.samples_ms)
        return self.median_ms

    @property
    def std_ms(self) -> float | None:
        return statistics.pstdev(self.samples_ms) if len(self.samples_ms) > 1 else (0.0 if self.samples_ms else None)


def settings_hash(settings: Mapping[str, Any]) -> str:
    return sha(canonical_json(dict(settings)), 12)
