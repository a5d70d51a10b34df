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
from hwnas.profilers.timing import TimingProtocol

DEFAULT_BACKEND = "onnxruntime"
#: Most sampled networks one job measures (a typo of a few zeros must not hang the job).
MAX_NETWORKS = 100_000


def check_networks(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NETWORKS:
        raise ConfigError(f"networks: expected an integer in 0..{MAX_NETWORKS}, got {str(n)[:30]}")
    return n


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


def tuning_dir(store: str | Path) -> Path:
    """Where TVM's MetaSchedule database for a store lives (next to the store)."""
    p = Path(store).resolve()
    return p.parent / (p.stem + ".tvm-tuning")


def backend_options(backends: Sequence[str], store: str | Path, tune_trials: int = 0,
                    gpu_index: int | None = None) -> dict[str, dict[str, Any]]:
    """Per-backend options implied by the job's settings (``gpu_index``: which GPU the
    GPU-capable backends time on)."""
    opts: dict[str, dict[str, Any]] = {}
    if "tvm" in backends:
        opts["tvm"] = {"tune_trials": tune_trials, "tuning_dir": str(tuning_dir(store)) if tune_trials else None}
    if gpu_index is not None:
        for b in backends:
            if getattr(registry.get("backend", b), "takes_gpu_index", False):
                opts.setdefault(b, {})["gpu_index"] = gpu_index
    return opts


def profile_space(space: str, space_options: Mapping[str, Any] | None = None, *, store: str | Path,
                  backends: Sequence[str] | None = None, device: str = "cpu",
                  protocol: TimingProtocol | None = None, networks: int = 0, seed: int = 0,
                  timeout_s: float = 300.0, tune_trials: int = 0, retry_failed: bool = False,
                  retry_flagged: bool = False, gpu_index: int = 0, ray_address: str | None = None,
                  device_resource: str | None = None) -> Any:
    """Measure a space's primitives (and ``networks`` sampled networks) into ``store``;
    returns the job summary. Resumable: what the store holds for these settings is
    skipped, except failed / flagged items when asked to retry them. Several jobs may
    share one store: each item is measured by one of them.

    With ``device_resource`` the items run as Ray tasks on the nodes advertising that
    custom resource (the cluster at ``ray_address``, or a local instance) and stream back
    to this process, the only writer of the store."""
    from hwnas.profilers.runner import ProfileJob, check_timeout
    from hwnas.store import Store

    check_networks(networks)
    if ray_address and not device_resource:
        raise ConfigError("--ray-address: name the farm's devices with --device-resource NAME "
                          "(a custom resource of the Ray nodes)")
    sp = build_space(space, space_options)
    names = expand_backends(backends)
    check_timeout(timeout_s, protocol or TimingProtocol())  # before the store is touched
    opts = backend_options(names, store, tune_trials, gpu_index if device == "gpu" else None)
    with Store(store) as st:
        kwargs = dict(backends=names, device=device, protocol=protocol, networks=networks, seed=seed,
                      timeout_s=timeout_s, backend_options=opts, retry_failed=retry_failed,
                      retry_flagged=retry_flagged)
        if device_resource:
            from hwnas.profilers.farm import FarmJob

            return FarmJob(st, sp, resource=device_resource, ray_address=ray_address, **kwargs).run()
        return ProfileJob(st, sp, **kwargs).run()


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
