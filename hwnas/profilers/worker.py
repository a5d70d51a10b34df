"""The measuring child process of a profiling job.

Why a child: a hang, a segfault in a compiler or an out-of-memory kill must cost one
item, not the job. The parent (:mod:`hwnas.profilers.runner`) talks to it through
JSON lines on stdin/stdout — no pickle — and kills it when an item exceeds its
timeout. The child keeps one backend alive between items so runtimes are imported
once. Anything native code prints goes to stderr, because fd 1 carries the protocol.

Protocol: the first line the child writes is ``{"ready": ...}``; then one request line
``{"kind": "primitive"|"network"|"onnx"|"torch", "spec": {...}}`` gets one reply line
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}``.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
from typing import Any, TextIO

log = logging.getLogger(__name__)


def _protocol_stream() -> TextIO:
    """Move the real stdout aside for the protocol and point fd 1 at stderr."""
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", buffering=1)


def _handle(backend: Any, protocol: Any, request: dict[str, Any], with_energy: bool) -> dict[str, Any]:
    from hwnas.errors import HwnasError
    from hwnas.primitives import NetworkSpec, Primitive

    try:
        spec, kind = request["spec"], request["kind"]
        if kind in ("onnx", "torch"):
            return {"ok": True, "result": _measure_model(backend, protocol, spec, kind, with_energy)}
        target = NetworkSpec.from_dict(spec) if kind == "network" else Primitive.from_dict(spec)
        res = backend.measure(target, protocol, with_energy=with_energy)
        return {"ok": True, "result": res.to_dict()}
    except HwnasError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # an item's failure is data; the worker goes on
        first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
        return {"ok": False, "error": f"{type(exc).__name__}: {first}"}


def _measure_model(backend: Any, protocol: Any, spec: dict[str, Any], kind: str, with_energy: bool) -> dict[str, Any]:
    """A whole ONNX model (or torch module) end to end, and per node when asked (ONNX
    Runtime's profiler; ``spec["per_node"]``)."""
    from hwnas.profilers.backends.base import OnnxTarget, TorchTarget

    target = OnnxTarget.from_spec(spec["target"]) if kind == "onnx" else TorchTarget.from_spec(spec["target"])
    out = backend.measure(target, protocol, with_energy=with_energy).to_dict()
    if spec.get("per_node"):
        from hwnas.profilers.ort_profile import node_protocol, profile_nodes

        out["profile"] = profile_nodes(backend, target, node_protocol(protocol))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = _protocol_stream()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from hwnas.profilers.messages import WorkerConfig

    cfg = WorkerConfig.from_dict(json.loads(argv[0]))
    for mod in cfg.imports:
        importlib.import_module(mod)
    from hwnas import registry
    from hwnas.profilers.timing import TimingProtocol

    protocol = TimingProtocol.from_dict(cfg.protocol)
    try:
        backend = registry.build("backend", cfg.backend, device=cfg.device, threads=protocol.threads,
                                 **cfg.options)
        versions = backend.versions()
    except Exception as exc:
        out.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        return 2
    out.write(json.dumps({"ready": True, "versions": versions}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = _handle(backend, protocol, json.loads(line), cfg.energy)
        try:
            out.write(json.dumps(reply) + "\n")
        except BrokenPipeError:
            return 0
    out.flush()
    return 0


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: every reply is written and flushed, and
    tearing down torch and the runtimes took ~0.4 s that the parent spent waiting."""
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover - run as a child process
    _exit_now(main())
