"""What a profiling job did: counts per backend, overheads, errors, and how trustworthy
its measurements are (the one-line warning ``hwnas profile`` prints when data are
unstable, like pyperf does).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BackendSummary:
    """Counts and overhead of one backend in one job."""

    backend: str
    settings_hash: str = ""
    measured: dict[str, int] = field(default_factory=lambda: {"primitive": 0, "network": 0, "block": 0})
    skipped: dict[str, int] = field(default_factory=lambda: {"primitive": 0, "network": 0})
    failed: dict[str, int] = field(default_factory=lambda: {"primitive": 0, "network": 0, "block": 0})
    #: items measured by another profiler on the same store while this job ran
    elsewhere: int = 0
    #: items left unmeasured because the job's deadline passed
    left: int = 0
    overhead_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: rows stored with ``flagged`` set, and why (reason -> count)
    flagged: int = 0
    flag_reasons: dict[str, int] = field(default_factory=dict)
    #: CPU share of the timed repeats (thread CPU / wall), one per host-timed row
    cpu_shares: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "primitives": self.measured["primitive"], "networks": self.measured["network"],
            "blocks": self.measured["block"],
            "skipped": self.skipped["primitive"] + self.skipped["network"],
            "failed": self.failed["primitive"] + self.failed["network"] + self.failed["block"],
            "flagged": self.flagged,
            "median_overhead_s": statistics.median(self.overhead_s) if self.overhead_s else None,
        }

    def add_evidence(self, evidence: dict[str, Any], flagged: bool | None) -> None:
        share = evidence.get("cpu_share")
        if isinstance(share, (int, float)):
            self.cpu_shares.append(float(share))
        if flagged:
            self.flagged += 1
            for reason in evidence.get("flags") or ["unstable"]:
                key = str(reason).split(" (")[0]
                self.flag_reasons[key] = self.flag_reasons.get(key, 0) + 1

    def stored(self) -> int:
        return sum(self.measured.values())


@dataclass
class JobSummary:
    """What a job did (rendered by the CLI; also returned as JSON)."""

    space: str
    store: str
    device: str
    device_fingerprint: str
    n_primitives: int
    n_networks: int
    backends: list[BackendSummary]
    wall_s: float = 0.0
    interrupted: bool = False

    def rows(self) -> list[dict[str, Any]]:
        return [b.row() for b in self.backends]

    def warnings(self) -> list[str]:
        """One line per backend whose data are unstable (flagged rows), pyperf-style."""
        out = []
        for b in self.backends:
            if not b.flagged:
                continue
            why = ", ".join(f"{k} {n}" for k, n in sorted(b.flag_reasons.items(), key=lambda kv: -kv[1]))
            share = (f"; median CPU share of timed repeats {statistics.median(b.cpu_shares):.0%}"
                     if b.cpu_shares else "")
            out.append(f"WARNING: {b.backend}: {b.flagged} of {b.stored()} measurements are unstable ({why}{share}); "
                       "the machine was busy: rerun them on a quiet machine (--retry-flagged) or fit with "
                       "--exclude-flagged")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "store": self.store, "device": self.device,
                "device_fingerprint": self.device_fingerprint, "n_primitives": self.n_primitives,
                "n_networks": self.n_networks, "wall_s": self.wall_s, "interrupted": self.interrupted,
                "warnings": self.warnings(),
                "backends": [{**b.row(), "settings_hash": b.settings_hash, "elsewhere": b.elsewhere, "left": b.left,
                              "flag_reasons": b.flag_reasons, "errors": b.errors[:20]} for b in self.backends]}
