"""Contract suite of the ``backend`` role (see hwnas/profilers/backends/base.py).

A backend is measured on a tiny primitive and a tiny network with a short timing
protocol; what must hold is what the profiler and the store rely on: positive, finite
samples, settings that identify the measurement (protocol, device, backend name) and
outputs of the right shape, equal to eager torch for the real backends.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import DependencyError
from hwnas.primitives import Primitive
from hwnas.profilers.backends.base import Backend, BackendResult, Target
from hwnas.profilers.timing import TimingProtocol
from hwnas.testing._common import ContractError, component, example, expect, finite, jsonable, skip_if_missing

ROLE = "backend"

#: Short protocol: a few repeats of one session (the suite checks plumbing, not speed).
PROTOCOL = TimingProtocol(warmup=1, min_repeats=2, max_repeats=3, min_time_ms=0.2, time_budget_s=2.0, sessions=1)


def targets() -> list[Target]:
    """A small convolution and a small network (the toy space's fc chain)."""
    from hwnas.testing.fakes import ToySpace

    space = ToySpace(n=2, k=2)
    return [Primitive("conv", 8, 8, 8, 8, kernel=3, act="relu"), space.to_network((1, 0))]


def build(name: str, tmp_dir: Path) -> Backend:
    """The backend built as the profiler builds it, on the CPU with one thread."""
    cls = component(ROLE, name)
    options = example(ROLE, name, cls, tmp_dir)
    expect(isinstance(options, dict), ROLE, name, f"example() must return a dict of options, got {options!r}")
    backend = cls(device="cpu", threads=1, **options)
    expect(isinstance(backend, Backend), ROLE, name, "must subclass hwnas.profilers.backends.base.Backend")
    expect(backend.name == name, ROLE, name,
           f"its name attribute is {backend.name!r}; it must equal the registry name (the store files rows under it)")
    try:
        backend.check_device()
    except DependencyError as exc:
        skip_if_missing(exc, ROLE, name)
    return backend


def check_measure(name: str, backend: Backend, target: Target) -> None:
    """Samples are positive and finite, one per repeat; overheads are recorded."""
    res = backend.measure(target, PROTOCOL, with_energy=False)
    expect(isinstance(res, BackendResult), ROLE, name, "measure() must return a BackendResult")
    samples = list(res.samples_ms)
    expect(PROTOCOL.min_repeats <= len(samples) <= PROTOCOL.max_repeats, ROLE, name,
           f"expected {PROTOCOL.min_repeats}..{PROTOCOL.max_repeats} samples, got {len(samples)}")
    expect(finite(samples) and min(samples) > 0, ROLE, name, f"samples must be positive and finite, got {samples}")
    expect(res.number >= 1 and "total" in res.overhead_s, ROLE, name, "a result records calls per repeat and overhead")
    expect(jsonable(res.to_dict()), ROLE, name, "a result must be JSON-able (it crosses the worker pipe)")


def check_settings(name: str, backend: Backend) -> None:
    """Settings identify a measurement: protocol, device, backend name; JSON-able."""
    settings = backend.settings(PROTOCOL)
    expect(jsonable(settings), ROLE, name, f"settings() must be JSON-able, got {settings!r}")
    expect(settings.get("timing") == PROTOCOL.to_dict(), ROLE, name, "settings() must hold the timing protocol")
    expect(settings.get("device") == "cpu" and settings.get("backend") == name, ROLE, name,
           "settings() must name the device and the backend")
    versions = backend.versions()
    expect(isinstance(versions, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items()),
           ROLE, name, f"versions() must map names to version strings, got {versions!r}")


def reference(target: Target) -> np.ndarray:
    """Eager torch output of the target on the profilers' deterministic input."""
    import torch

    from hwnas.nn.builders import build as build_module
    from hwnas.nn.builders import example_input

    with torch.inference_mode():
        return build_module(target)(example_input(target, 1)).numpy()


def check_output(name: str, backend: Backend, target: Target) -> None:
    """The output has the target's shape; real backends (``in_all``) agree with torch."""
    out = np.asarray(backend.prepare(target, 1).output())
    ref = reference(target)
    what = target.key if isinstance(target, Primitive) else f"network {target.hash}"
    expect(out.shape == ref.shape, ROLE, name, f"output of {what} has shape {out.shape}, expected {ref.shape}")
    if getattr(backend, "in_all", True):
        err = float(np.max(np.abs(out - ref))) if out.size else 0.0
        expect(np.allclose(out, ref, rtol=1e-3, atol=1e-4), ROLE, name,
               f"output of {what} differs from eager torch by up to {err:.3g}")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Every backend rule, on a small primitive and a small network."""
    backend = build(name, Path(tmp_dir))
    check_settings(name, backend)
    for target in targets():
        try:
            check_measure(name, backend, target)
            check_output(name, backend, target)
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"{ROLE} {name!r}: measuring a small target failed: {type(exc).__name__}: {exc}") \
                from exc
