"""vaitrace's default CSV output, ``profile_summary.csv``.

Layout (from the tool's writer)::

    Profile Summary
    Generated on: ...
    <blank>
    DPU Summary
    Kernel Name,Number Of Runs,CU Full Name,Minimum Time (ms),Average Time (ms),Maximum Time (ms),Workload(GOP),...,
    subgraph_conv1,651,DPUCZDX8G_1:batch-1,0.067,11.461,34.191,7.718,673.388,49.947,4357.893,
    cpu_func,12,CPU,0.101,0.214,0.377,

Every line ends with a comma (an empty last field, dropped here). CPU-function rows in
the same block carry only six fields. Vitis AI 1.3 wrote the header as min, max, avg
while its rows are min, avg, max; rows have always been min, avg, max, so we read the
three time columns by position, check ``min <= avg <= max`` on every row (which is what
would catch a real reordering), and note the quirk when the header disagrees.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record, Skipped, fail, number, read_lines
from hwnas.registry import register

_BATCH = re.compile(r"batch-(\d+)")
_EXTRA_COLUMNS = ("workload_gop", "perf_gops", "mem_io_mb", "mem_bw_mbps")


def _fields(text: str) -> list[str]:
    row = next(csv.reader([text]))
    if row and row[-1].strip() == "":
        row = row[:-1]
    return [c.strip() for c in row]


def _time_order(path: Path, line: int, header: list[str]) -> tuple[str, bool]:
    """'min,avg,max' or 'min,max,avg' as the header names columns 4-6; quirk flag."""
    names = [h.lower() for h in header[3:6]]
    order = ",".join("min" if n.startswith("min") else "max" if n.startswith("max")
                     else "avg" if n.startswith("av") else "?" for n in names)
    if order not in ("min,avg,max", "min,max,avg"):
        raise fail(path, line, f"expected Minimum/Average/Maximum Time columns 4-6 in the header, got {header[3:6]}")
    return order, order == "min,max,avg"


@register("ingest_format", "vaitrace-csv")
class VaitraceCsvFormat(LatencyFormat):
    """vaitrace profile_summary.csv (DPU Summary block; CPU-function rows skipped)."""

    backend = "vaitrace"
    precision = "int8"

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        lines = read_lines(path)
        start = next((i for i, t in enumerate(lines) if t.strip().rstrip(",").strip() == "DPU Summary"), None)
        if start is None:
            raise fail(path, None, "expected a 'DPU Summary' line after the preamble, found none")
        if start + 1 >= len(lines) or not lines[start + 1].strip():
            raise fail(path, start + 2, "expected the 'Kernel Name,Number Of Runs,...' header after 'DPU Summary'")
        header = _fields(lines[start + 1])
        if not header or header[0] != "Kernel Name" or len(header) < 6:
            raise fail(path, start + 2, f"expected a header starting 'Kernel Name,Number Of Runs,CU Full Name', "
                                        f"got {lines[start + 1][:60]!r}")
        order, quirk = _time_order(path, start + 2, header)
        out = Parsed(path, "vaitrace-csv", notes={"header_time_order": order, "vai13_header_quirk": quirk,
                                                  "preamble": [t for t in lines[:start] if t.strip()][:3]})
        groups: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = {}
        i = start + 2
        while i < len(lines) and lines[i].strip():
            line = i + 1
            f = _fields(lines[i])
            i += 1
            if len(f) == 6 and f[2].upper() == "CPU":
                self._times(path, line, f)
                number(f[1], path, line, "Number Of Runs")
                out.skipped.append(Skipped(f"{path.name}:{line}", f[0], "CPU function, not a DPU subgraph"))
                continue
            if len(f) != len(header):
                raise fail(path, line, f"expected {len(header)} fields (DPU row) or 6 (CPU-function row), "
                                       f"got {len(f)}")
            if not f[0]:
                raise fail(path, line, "expected a kernel name in the first field, got an empty one")
            runs = number(f[1], path, line, "Number Of Runs")
            if not runs.is_integer() or runs < 1:
                raise fail(path, line, f"expected a positive integer Number Of Runs, got {f[1]!r}")
            tmin, tavg, tmax = self._times(path, line, f)
            m = _BATCH.search(f[2])
            row: dict[str, Any] = {"runs": int(runs), "cu": f[2], "min_ms": tmin, "avg_ms": tavg, "max_ms": tmax,
                                   "batch": int(m.group(1)) if m else 1}
            for key, tok in zip(_EXTRA_COLUMNS, f[6:]):
                row[key] = number(tok, path, line, key)
            groups.setdefault((f[0], row["batch"]), []).append((line, row))
        if not groups:
            raise fail(path, start + 3, "expected at least one DPU row under the DPU Summary header")
        for (name, batch), occ in groups.items():
            rows = [r for _, r in occ]
            extra: dict[str, Any] = {"cu": sorted({r["cu"] for r in rows}), "runs": sum(r["runs"] for r in rows),
                                     "min_ms": min(r["min_ms"] for r in rows), "max_ms": max(r["max_ms"] for r in rows),
                                     "statistic": "average over runs"}
            for key in _EXTRA_COLUMNS:
                if key in rows[0]:
                    extra[key] = rows[0][key]
            out.records.append(Record(name=name, samples_ms=[r["avg_ms"] for r in rows], where=f"{path.name}:{occ[0][0]}",
                                      settings={"format": "vaitrace", "batch": batch}, extra=extra))
        return out

    @staticmethod
    def _times(path: Path, line: int, f: list[str]) -> tuple[float, float, float]:
        """Rows are always min, avg, max (whatever the header says); check the order."""
        tmin, tavg, tmax = (number(f[k], path, line, c) for k, c in ((3, "minimum time"), (4, "average time"),
                                                                      (5, "maximum time")))
        if not (tmin <= tavg <= tmax) or tmin < 0:
            raise fail(path, line, f"expected times min <= avg <= max (columns 4-6), got {f[3]}, {f[4]}, {f[5]}")
        return tmin, tavg, tmax
