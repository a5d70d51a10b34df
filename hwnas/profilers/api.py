"""The library behind ``hwnas profile``: one call from options to a finished job.

Policies live here, not in the command line: what ``all`` backends means (every
registered backend that declares ``in_all``), where TVM keeps its tuning database
(beside the store, so a rerun reuses it), and how an offline bundle is written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas import registry
from hwnas.config import build_space
from hwnas.errors import ConfigError
from hwnas.primitives import NetworkSpec
from hwnas.profilers.request import MAX_NETWORKS, ProfileRequest, backend_options, check_networks, tuning_dir
from hwnas.profilers.timing import TimingProtocol

__all__ = ["DEFAULT_BACKEND", "MAX_NETWORKS", "ProfileRequest", "backend_options", "check_networks",
           "expand_backends", "export_space_bundle", "profile_space", "tuning_dir"]

DEFAULT_BACKEND = "onnxruntime"


def expand_backends(values: Sequence[str] | None) -> list[str]:
    """Backend names from repeatable, comma-separated values; ``all`` = every registered
    backend with ``in_all``; default: onnxruntime."""
    out: list[str] = []
    for v in values or [DEFAULT_BACKEND]:
        names = [e.name for e in registry.list("backend") if getattr(e.obj, "in_all", True)] if v == "all" \
            else [b.strip() for b in v.split(",")]
        for b in names:
            if not b:
                raise ConfigError(f"backend: empty name in {v!r}")
            registry.get("backend", b)  # unknown names fail here, with close matches
            if b not in out:
                out.append(b)
    return out


def profile_space(space: str, space_options: Mapping[str, Any] | None, store: str | Path,
                  request: ProfileRequest | None = None) -> Any:
    """Measure a space's primitives (and ``request.networks`` sampled networks) into
    ``store``; returns the job summary. Resumable: what the store holds for these
    settings is skipped, except failed / flagged items when asked to retry them. Several
    jobs may share one store: each item is measured by one of them (leases).

    With ``request.device_resource`` the items run as Ray tasks on the nodes advertising
    that custom resource (the cluster at ``ray_address``, or a local instance) and stream
    back to this process, the only writer of the store, under the same leases."""
    from hwnas.profilers.runner import DEFAULT_TIMEOUT_S, ProfileJob, check_timeout
    from hwnas.store import Store

    request = request or ProfileRequest()
    sp = build_space(space, space_options)
    for b in request.backends:
        registry.get("backend", b)  # unknown names fail here, with close matches
    check_timeout(request.timeout(DEFAULT_TIMEOUT_S), request.timing())  # before the store is touched
    with Store(store) as st:
        if request.device_resource:
            from hwnas.profilers.farm import FarmJob

            return FarmJob(st, sp, request).run()
        return ProfileJob(st, sp, request).run()


def export_space_bundle(space: str, space_options: Mapping[str, Any] | None, out_dir: str | Path, *,
                        protocol: TimingProtocol | None = None, networks: int = 0, seed: int = 0) -> dict[str, Any]:
    """Write an offline bundle of a space (ONNX files + manifest + runner)."""
    from hwnas.profilers.offline import export_bundle

    check_networks(networks)
    return export_bundle(build_space(space, space_options), out_dir, protocol=protocol, networks=networks, seed=seed)


def measure_network(network: NetworkSpec, *, backend: str = DEFAULT_BACKEND, threads: int = 1) -> dict[str, Any]:
    """One network's latency on this machine's CPU (median ms at batch 1, the default timing
    protocol), as ``hwnas test --profile`` reports it beside the test accuracy."""
    import statistics

    be = registry.get("backend", backend)(device="cpu", threads=threads)
    be.check_device()
    result = be.measure(network, TimingProtocol(threads=threads), with_energy=False)
    return {"backend": backend, "threads": threads, "latency_ms": statistics.median(result.samples_ms),
            "latency_samples": len(result.samples_ms)}
