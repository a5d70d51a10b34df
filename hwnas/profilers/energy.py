"""Energy meters: CPU package energy from Linux RAPL, GPU energy from NVML.

Why only these: both are cumulative hardware counters, so the energy of a timing loop
is a difference of two readings with no sampling error. When neither is readable
(no permission, a VM, no NVML) the reading is ``None`` — an energy value is never
estimated or invented.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Where the kernel exposes RAPL domains (patched in tests).
POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class EnergyReading:
    """Energy over an interval: joules (None if unreadable), seconds, and the source."""

    energy_j: float | None
    seconds: float
    source: str | None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def rapl_domains(root: Path | None = None) -> list[Path]:
    """Top-level RAPL package domains (``intel-rapl:0``, ``intel-rapl:1``...) whose
    counter is readable; sub-domains (``intel-rapl:0:0``) are inside the package and
    would be double counted."""
    root = root or POWERCAP_ROOT
    try:
        cands = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    except OSError:
        return []
    return [p for p in cands if _read_int(p / "energy_uj") is not None]


class RaplCounter:
    """Sum of package counters in microjoules, with wraparound handled per domain."""

    def __init__(self, root: Path | None = None) -> None:
        self.domains = rapl_domains(root)
        self.max_range = {d: _read_int(d / "max_energy_range_uj") for d in self.domains}
        self._start: dict[Path, int] = {}

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def start(self) -> None:
        self._start = {d: v for d in self.domains if (v := _read_int(d / "energy_uj")) is not None}

    def stop(self) -> float | None:
        """Joules since :meth:`start`, or None if a counter became unreadable."""
        total_uj = 0
        for d, v0 in self._start.items():
            v1 = _read_int(d / "energy_uj")
            if v1 is None:
                return None
            delta = v1 - v0
            if delta < 0:  # the counter wrapped around
                rng = self.max_range.get(d)
                if not rng:
                    return None
                delta += rng
            total_uj += delta
        return total_uj / 1e6 if self._start else None


class NvmlCounter:
    """A GPU's total energy counter (millijoules, Volta and newer) via NVML; ``index`` is
    the NVML index of the GPU the measurement runs on."""

    def __init__(self, index: int = 0) -> None:
        self.handle = None
        self.index = int(index)
        self._start: int | None = None
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            self.nvml, self.handle = pynvml, handle
        except Exception as exc:  # missing module, no driver, unsupported GPU
            log.debug("NVML energy unavailable: %s", exc)

    @property
    def available(self) -> bool:
        return self.handle is not None

    def start(self) -> None:
        if self.handle is not None:
            self._start = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def stop(self) -> float | None:
        if self.handle is None or self._start is None:
            return None
        try:
            return (int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) - self._start) / 1000.0
        except Exception:
            return None


class EnergyMeter:
    """The meter for a device: RAPL for ``cpu``, NVML (GPU ``gpu_index``) for ``gpu``."""

    def __init__(self, device: str = "cpu", root: Path | None = None, gpu_index: int = 0) -> None:
        self.counter: RaplCounter | NvmlCounter = NvmlCounter(gpu_index) if device == "gpu" else RaplCounter(root)
        self.source = ("nvml" if device == "gpu" else "rapl") if self.counter.available else None
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        if self.source:
            self.counter.start()

    def stop(self) -> EnergyReading:
        seconds = time.perf_counter() - self._t0
        joules = self.counter.stop() if self.source else None
        return EnergyReading(joules, seconds, self.source if joules is not None else None)
