"""Device fingerprint: what identifies the hardware and software a table was measured on.

Why so many fields: a latency table is only valid for the CPU model, the thread count,
the frequency governor and the runtime versions it was measured with; the store keys
measurements by this fingerprint so a table from one device is never used for another.
Runtime versions are read from package metadata, so fingerprinting never imports TVM.
"""
from __future__ import annotations

import logging
import os
import platform
from importlib import metadata
from pathlib import Path

from hwnas.store import Device

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")

#: Runtime name -> distribution names to try (first installed wins).
RUNTIMES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tvm": ("apache-tvm", "tvm", "mlc-ai-nightly"),
}


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def governor(path: Path = GOVERNOR) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def runtime_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, dists in RUNTIMES.items():
        for d in dists:
            try:
                out[name] = metadata.version(d)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def gpu_info(index: int = 0) -> tuple[str | None, str | None]:
    """(name, driver version) of GPU ``index`` via NVML, else torch.cuda; (None, None) without one."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(h)
        drv = pynvml.nvmlSystemGetDriverVersion()
        return (name.decode() if isinstance(name, bytes) else str(name),
                drv.decode() if isinstance(drv, bytes) else str(drv))
    except Exception as exc:
        log.debug("NVML unavailable: %s", exc)
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(index), f"cuda {torch.version.cuda}"
    except Exception as exc:  # pragma: no cover - broken CUDA installs
        log.debug("torch.cuda unavailable: %s", exc)
    return None, None


def device_fingerprint(kind: str = "cpu", threads: int = 1, *, name: str | None = None,
                       precision: str = "fp32", gpu_index: int = 0) -> Device:
    """The Device record for this machine as used by a profiling job (on GPU ``gpu_index``)."""
    gpu_name, gpu_driver = gpu_info(gpu_index) if kind == "gpu" else (None, None)
    # The label enters the fingerprint, so it must not carry a host name that changes
    # between containers of the same machine.
    label = name or kind
    return Device(
        name=label, kind=kind, cpu_model=cpu_model(), cores=os.cpu_count(), threads=threads,
        governor=governor(), gpu_name=gpu_name, gpu_driver=gpu_driver,
        runtimes=tuple(runtime_versions().items()), precision=precision,
    )
