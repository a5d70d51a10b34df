"""The two messages between a profiling job and its measuring child process, typed.

Why typed: three jobs (spaces, kernels, models) and the Ray farm's nodes all start the
same child (:mod:`hwnas.profilers.worker`) and read its replies. When each job built the
configuration dict by hand and picked ``reply["result"]["samples_ms"]`` out of a dict,
a key spelled differently in one of them failed only at run time. Here the configuration
is one frozen record built by one function (:func:`worker_config`), and a reply is either
samples or an error, never both (after TVM meta_schedule's ``RunnerResult``). Both still
travel as JSON (stdin/stdout of the child, Ray task arguments): ``to_dict`` / ``from_dict``.

This module imports nothing heavy: the child reads its configuration through it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["WorkerConfig", "WorkerReply", "worker_config"]


@dataclass(frozen=True)
class WorkerConfig:
    """What the measuring child process needs to build its backend and time items."""

    backend: str
    device: str
    protocol: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ()
    energy: bool = True

    @property
    def threads(self) -> int:
        return int(self.protocol.get("threads", 1))

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "options": dict(self.options),
                "protocol": dict(self.protocol), "imports": list(self.imports), "energy": self.energy}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WorkerConfig":
        return cls(str(data["backend"]), str(data["device"]), dict(data["protocol"]), dict(data.get("options") or {}),
                   tuple(data.get("imports") or ()), bool(data.get("energy", True)))


def worker_config(backend: Any, device: str, protocol: Any, *, imports: tuple[str, ...] = (),
                  energy: bool = True) -> WorkerConfig:
    """The one way a job describes its child: the backend's name and validated options,
    the device, the timing protocol (a :class:`~hwnas.profilers.timing.TimingProtocol`)."""
    return WorkerConfig(backend.name, device, protocol.to_dict(), dict(backend.options), tuple(imports), energy)


@dataclass(frozen=True)
class WorkerReply:
    """One item's outcome: the backend's result (samples and evidence) or an error.

    ``error`` is set exactly when the item failed (unsupported op, compile error,
    timeout, crash); a failure is data, stored as an error row."""

    result: Mapping[str, Any] | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("a worker reply holds a result or an error, exactly one")

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def samples_ms(self) -> tuple[float, ...]:
        return tuple(float(s) for s in (self.result or {}).get("samples_ms", ()))

    @classmethod
    def failure(cls, error: str) -> "WorkerReply":
        return cls(None, error or "unknown error")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WorkerReply":
        """A reply line of the child (``{"ok": true, "result": ...}`` / ``{"ok": false, "error": ...}``)."""
        if data.get("ok") and isinstance(data.get("result"), Mapping):
            return cls(dict(data["result"]))
        return cls.failure(str(data.get("error") or "unknown error"))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "result": dict(self.result or {})} if self.ok else {"ok": False, "error": self.error}
