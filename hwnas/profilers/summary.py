"""What a profiling job did: counts per backend, overheads, errors, and how trustworthy
its measurements are (the one-line warning ``hwnas profile`` prints when data are
unstable, like pyperf does).
"""
from __future__ import annotations

import os
import re
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
    #: the size of each flag (the percentage in its reason: how far sessions disagreed, ...)
    flag_sizes: dict[str, list[float]] = field(default_factory=dict)
    #: CPU share of the timed repeats (thread CPU / wall), one per host-timed row
    cpu_shares: list[float] = field(default_factory=list)
    #: the same, flagged rows only (what a "busy machine" verdict must rest on)
    flagged_shares: list[float] = field(default_factory=list)
    #: per row: share of the machine's CPU other processes used, and the load average
    others_cpu: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

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
                self.flagged_shares.append(float(share))
        if isinstance(evidence.get("others_cpu"), (int, float)):
            self.others_cpu.append(float(evidence["others_cpu"]))
        loads = [x for x in evidence.get("load") or [] if isinstance(x, (int, float))]
        if loads:
            self.loads.append(max(loads))
        if flagged:
            self.flagged += 1
            for reason in evidence.get("flags") or ["unstable"]:
                key = str(reason).split(" (")[0]
                self.flag_reasons[key] = self.flag_reasons.get(key, 0) + 1
                size = re.search(r"\((\d+(?:\.\d+)?)%", str(reason))
                if size:
                    self.flag_sizes.setdefault(key, []).append(float(size.group(1)))

    def stored(self) -> int:
        return sum(self.measured.values())

    def seen(self) -> str:
        """What was seen, per flag reason: how many, and by how much (``sessions disagree
        12: by 6-23%, median 8%``)."""
        parts = []
        for key, n in sorted(self.flag_reasons.items(), key=lambda kv: -kv[1]):
            sizes = self.flag_sizes.get(key)
            by = ""
            if sizes:
                lo, hi, med = min(sizes), max(sizes), statistics.median(sizes)
                by = f": by {lo:.0f}%" if lo == hi else f": by {lo:.0f}-{hi:.0f}%, median {med:.0f}%"
            parts.append(f"{key} {n}{by}")
        return "; ".join(parts)

    def warning(self, cores: int) -> str:
        """The one-line warning: what was seen, the CPU evidence, and a verdict on the
        machine that the evidence supports (busy only when it says so)."""
        from hwnas.profilers.interference import busy_evidence

        seen = [f"median CPU share of timed repeats {statistics.median(self.cpu_shares):.0%}"] \
            if self.cpu_shares else []
        if self.others_cpu:
            seen.append(f"other processes used {statistics.median(self.others_cpu):.0%} of the CPU")
        busy = busy_evidence(self.flagged_shares, self.others_cpu, self.loads, self.flag_reasons.get("steal", 0),
                             cores)
        head = f"WARNING: {self.backend}: {self.flagged} of {self.stored()} measurements are unstable ({self.seen()})"
        if busy:
            return (f"{head}; the machine was busy ({'; '.join(busy)}): rerun them on a quiet machine "
                    "(--retry-flagged) or fit with --exclude-flagged")
        return (f"{head}; {', '.join(seen) + ': ' if seen else ''}no sign of a busy machine, so this is the "
                "runtime's own run-to-run variation: rerun them (--retry-flagged), raise --sessions, or fit "
                "with --exclude-flagged")


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
        cores = os.cpu_count() or 1
        return [b.warning(cores) for b in self.backends if b.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "store": self.store, "device": self.device,
                "device_fingerprint": self.device_fingerprint, "n_primitives": self.n_primitives,
                "n_networks": self.n_networks, "wall_s": self.wall_s, "interrupted": self.interrupted,
                "warnings": self.warnings(),
                "backends": [{**b.row(), "settings_hash": b.settings_hash, "elsewhere": b.elsewhere, "left": b.left,
                              "flag_reasons": b.flag_reasons, "errors": b.errors[:20]} for b in self.backends]}
