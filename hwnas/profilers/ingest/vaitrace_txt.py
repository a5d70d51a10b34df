"""``vaitrace --txt`` summaries (Vitis AI 1.4 to 3.x).

The summary is two tables whose cells are joined by `` | ``: the DPU table (one row per
subgraph and DPU core) and the CPU-function table. Column names changed between
releases, so the header is read, not assumed:

=====================  ==================================================================
1.4                    DPU | Batch | SubGraph | Workload(GOP) | RunTime(ms) | Perf(GOP/s) | Mem(MB) | MB/s
2.0                    DPU Id | Bat | SubGraph | WL | RT | Perf | LdWB | LdFM | StFM | AvgBw
2.5 / 3.x (aarch64)    DPU Id | Bat | DPU SubGraph | WL | SW_RT | HW_RT | Effic | LdWB | LdFM | StFM | AvgBw
3.x (x86)              as 2.5 without HW_RT and Effic
=====================  ==================================================================

The stored latency is the software runtime (``RunTime`` / ``RT`` / ``SW_RT``) because it
is the one column every version prints, so tables from different releases stay
comparable; ``HW_RT`` (pure DPU time) and the rest go to the measurement's extras.
Values under 0.001 print as ``~0`` and are read as 0. Long subgraph names are shortened
to ``...`` plus their last 60 characters; the mapping step matches them by suffix.
CPU functions (``vart::...``, ``xir::...``) are runtime calls, not layers: they are
validated and reported as skipped.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from hwnas.profilers.ingest.base import APPROX_ZERO, LatencyFormat, Parsed, Record, Skipped, fail, number, read_lines
from hwnas.registry import register

#: Header cell -> canonical column.
_ALIASES: dict[str, str] = {
    "DPU": "dpu", "DPU Id": "dpu", "Batch": "batch", "Bat": "batch", "SubGraph": "subgraph",
    "DPU SubGraph": "subgraph", "Workload(GOP)": "workload_gop", "WL": "workload_gop",
    "RunTime(ms)": "runtime_ms", "RT": "runtime_ms", "SW_RT": "runtime_ms", "HW_RT": "hw_runtime_ms",
    "Perf(GOP/s)": "perf_gops", "Perf": "perf_gops", "Mem(MB)": "mem_mb", "MB/s": "avg_bw_mbps",
    "Effic": "efficiency_pct", "LdWB": "load_weights_mb", "LdFM": "load_fmap_mb", "StFM": "store_fmap_mb",
    "AvgBw": "avg_bw_mbps",
}
_TEXT_COLUMNS = ("dpu", "subgraph")
_REQUIRED = ("dpu", "batch", "subgraph", "runtime_ms")


def header_version(cols: list[str]) -> str:
    """Name the vaitrace release a DPU-table header comes from."""
    if "RunTime(ms)" in cols:
        return "1.4"
    if "RT" in cols:
        return "2.0"
    if "SW_RT" in cols:
        return "2.5/3.x-aarch64" if "HW_RT" in cols else "3.x-x86"
    return "unknown"


def _cells(text: str) -> list[str]:
    return [c.strip() for c in text.split("|")]


def _table(path: Path, lines: list[str], start: int) -> tuple[list[str], list[tuple[int, list[str]]], int]:
    """Header cells, (line, cells) rows up to the first blank line, and the next index."""
    header = _cells(lines[start])
    rows: list[tuple[int, list[str]]] = []
    i = start + 1
    while i < len(lines) and lines[i].strip():
        cells = _cells(lines[i])
        if len(cells) != len(header):
            raise fail(path, i + 1, f"expected {len(header)} cells separated by ' | ' (as in the header of line "
                                    f"{start + 1}), got {len(cells)}")
        rows.append((i + 1, cells))
        i += 1
    if not rows:
        raise fail(path, start + 2, f"expected at least one row under the header of line {start + 1}, got "
                                    + ("the end of the file" if i >= len(lines) else "a blank line"))
    return header, rows, i


@register("ingest_format", "vaitrace-txt")
class VaitraceTxtFormat(LatencyFormat):
    """`vaitrace --txt` summaries: DPU subgraph table (any release) plus CPU functions."""

    backend = "vaitrace"
    precision = "int8"

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        lines = read_lines(path)
        out = Parsed(path, "vaitrace-txt")
        groups: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = {}
        i = 0
        while i < len(lines):
            first = _cells(lines[i])[0] if "|" in lines[i] else ""
            if first in ("DPU", "DPU Id"):
                header, rows, i = _table(path, lines, i)
                unknown = [h for h in header if h not in _ALIASES]
                if unknown:
                    raise fail(path, i - len(rows), f"expected vaitrace DPU columns, got unknown {unknown[0]!r}")
                cols = [_ALIASES[h] for h in header]
                missing = [c for c in _REQUIRED if c not in cols]
                if missing:
                    raise fail(path, i - len(rows), f"expected a {missing[0]} column in the DPU header")
                out.notes["header"] = header_version(header)
                for line, cells in rows:
                    row: dict[str, Any] = {}
                    for c, v in zip(cols, cells):
                        if c in _TEXT_COLUMNS:
                            if not v:
                                raise fail(path, line, f"expected a non-empty {c} cell")
                            row[c] = v
                        else:
                            row[c] = number(v, path, line, c, allow_approx=True)
                            if v == APPROX_ZERO:
                                row.setdefault("approx_zero", []).append(c)
                    if not float(row["batch"]).is_integer() or row["batch"] < 1:
                        raise fail(path, line, f"expected a positive integer batch, got {row['batch']!r}")
                    groups.setdefault((row["subgraph"], int(row["batch"])), []).append((line, row))
            elif first == "Function":
                header, rows, i = _table(path, lines, i)
                if len(header) < 4:
                    raise fail(path, i - len(rows), "expected 'Function | Device | Runs | AverageRunTime(ms)'")
                for line, cells in rows:
                    number(cells[2], path, line, "Runs")
                    number(cells[3], path, line, "AverageRunTime(ms)", allow_approx=True)
                    out.skipped.append(Skipped(f"{path.name}:{line}", cells[0],
                                               f"{cells[1]} function (runtime call), not a DPU subgraph"))
            else:
                i += 1
        if not groups:
            raise fail(path, None, "expected a DPU table (header starting 'DPU Id |' or 'DPU |'), found none")
        for (name, batch), occ in groups.items():
            rows_ = [r for _, r in occ]
            extra: dict[str, Any] = {"dpu": sorted({r["dpu"] for r in rows_}), "rows": len(rows_),
                                     "header": out.notes["header"]}
            for key in rows_[0]:
                if key not in ("dpu", "subgraph", "batch", "runtime_ms", "approx_zero"):
                    extra[key] = statistics.fmean(r[key] for r in rows_)
            zeros = sorted({c for r in rows_ for c in r.get("approx_zero", [])})
            if zeros:
                extra["approx_zero"] = zeros
            out.records.append(Record(name=name, samples_ms=[r["runtime_ms"] for r in rows_],
                                      where=f"{path.name}:{occ[0][0]}",
                                      settings={"format": "vaitrace", "batch": batch}, extra=extra))
        return out
