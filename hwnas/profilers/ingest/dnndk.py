"""DNNDK / N2Cube per-layer profiles (``dpu_set_mode(PROFILE)`` output).

The tool prints one table per task run::

      ID    NodeName Workload(MOP) Mem(MB) RunTime(ms) Perf(GOPS) Utilization    MB/S
       1    net_conv_1     14.451    0.34       0.134      107.8         8.8%  2550.7
    ...
                    Total Nodes In Avg:
                                    All       207.171    5.33       3.279  ...

Node names are right-aligned in 30 characters, but long ones are truncated (sometimes
left-aligned and ending in ``*``) and older versions print 2 decimals, so fixed columns
cannot be trusted. We parse by whitespace instead: first token the ID, last six
tokens the numbers (the printf format has six numeric fields), everything in between
the name. A log may hold many tables (one per run); tables of the same kernel are
averaged layer by layer, each table contributing one sample. The ``All`` row closes a table and must equal the per-layer sums of
workload and runtime within the printing precision, which catches a table that was cut
or garbled in a way the row parser alone would miss.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record, decimals, fail, number, read_lines
from hwnas.registry import register

_KERNEL = re.compile(r'DPU Kernel\s+"([^"]*)"(?:\s+DPU Task\s+"([^"]*)")?')
_COLUMNS = ("workload_mop", "mem_mb", "runtime_ms", "perf_gops", "utilization_pct", "mb_per_s")
_N = len(_COLUMNS)


@dataclass
class _Table:
    kernel: str
    task: str
    start: int                                            # line of the header
    rows: list[tuple[int, str, list[float], int]] = field(default_factory=list)  # id, name, values, line
    runtime_decimals: int = 3
    workload_decimals: int = 3


def _check_all_row(path: Path, line: int, table: _Table, values: list[float]) -> None:
    """The All row must equal the per-layer sums of workload and runtime within rounding."""
    n = len(table.rows)
    for idx, label, dec in ((0, "workload (MOP)", table.workload_decimals), (2, "runtime (ms)", table.runtime_decimals)):
        total = sum(r[2][idx] for r in table.rows)
        tol = 0.5 * 10 ** -dec * (n + 1) + 1e-9
        if abs(total - values[idx]) > tol:
            raise fail(path, line, f"expected the All row {label} to equal the sum of the {n} layers "
                                   f"({total:.{dec}f} +/- {tol:.{dec + 1}f}), got {values[idx]:.{dec}f}")


def parse_tables(path: Path) -> tuple[list[_Table], int]:
    """All closed tables of a log and the count of lines outside tables (log noise)."""
    lines = read_lines(path)
    tables: list[_Table] = []
    kernel, task = "", ""
    current: _Table | None = None
    noise = 0
    for i, raw in enumerate(lines, start=1):
        text = raw.strip()
        m = _KERNEL.search(text)
        if m:
            if current is not None:
                raise fail(path, i, f"expected an 'All' row closing the table of line {current.start}, "
                                    "got a new profile banner")
            kernel, task = m.group(1), m.group(2) or ""
            continue
        if "NodeName" in text and "RunTime" in text:
            if current is not None:
                raise fail(path, i, f"expected an 'All' row closing the table of line {current.start}, got a header")
            current = _Table(kernel, task, i)
            continue
        if current is None:
            if text and not set(text) <= {"=", "-"}:
                noise += 1
            continue
        if not text or text.startswith("Total Nodes"):
            continue
        toks = text.split()
        if toks[0] == "All":
            if len(toks) != 1 + _N:
                raise fail(path, i, f"expected 'All' and {_N} numeric columns, got {len(toks) - 1} column(s)")
            values = [number(t, path, i, f"All {c}") for t, c in zip(toks[1:], _COLUMNS)]
            if not current.rows:
                raise fail(path, i, "expected at least one layer row before the All row")
            _check_all_row(path, i, current, values)
            tables.append(current)
            current = None
            continue
        if not toks[0].isdigit():
            raise fail(path, i, f"expected a layer row 'ID NAME <6 numbers>' or the All row, got {text[:60]!r}")
        if len(toks) < 2 + _N:
            raise fail(path, i, f"expected an ID, a name and {_N} numeric columns, got {len(toks)} field(s)")
        nums = toks[-_N:]
        try:
            values = [float(t.rstrip("%")) for t in nums]
        except ValueError:
            bad = next(t for t in nums if not _is_number(t))
            raise fail(path, i, f"expected {_N} numeric columns after the name, got {bad!r}") from None
        values = [number(t, path, i, "a numeric column") for t in nums]  # finiteness
        if not current.rows:
            current.workload_decimals, current.runtime_decimals = decimals(nums[0]), decimals(nums[2])
        current.rows.append((int(toks[0]), " ".join(toks[1:-_N]), values, i))
    if current is not None:
        raise fail(path, len(lines), f"expected an 'All' row closing the table of line {current.start} "
                                     "(truncated log?), got the end of the file")
    if not tables:
        raise fail(path, None, "expected at least one DNNDK profile table (a header line with NodeName and "
                               "RunTime(ms)), found none")
    return tables, noise


def _is_number(tok: str) -> bool:
    try:
        float(tok.rstrip("%"))
    except ValueError:
        return False
    return True


@register("ingest_format", "dnndk")
class DnndkFormat(LatencyFormat):
    """DNNDK/N2Cube per-layer profile logs; tables of one kernel are averaged."""

    backend = "dnndk"
    precision = "int8"

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        tables, noise = parse_tables(path)
        groups: dict[tuple[str, int], list[tuple[_Table, tuple[int, str, list[float], int]]]] = {}
        for t in tables:
            for row in t.rows:
                groups.setdefault((t.kernel, row[0]), []).append((t, row))
        out = Parsed(path, "dnndk", notes={"tables": len(tables), "lines_outside_tables": noise,
                                           "kernels": sorted({t.kernel for t in tables})})
        for (kernel, layer_id), occ in groups.items():
            names = {row[1] for _, row in occ}
            if len(names) > 1:
                line = occ[1][1][3]
                raise fail(path, line, f"expected layer {layer_id} of kernel {kernel!r} to be named like in "
                                       f"the first table ({occ[0][1][1]!r}), got {sorted(names - {occ[0][1][1]})[0]!r}")
            first = occ[0][1]
            cols = list(zip(*(row[2] for _, row in occ)))
            extra = {c: statistics.fmean(v) for c, v in zip(_COLUMNS, cols) if c != "runtime_ms"}
            extra.update({"layer_id": layer_id, "kernel": kernel, "tables": len(occ),
                          "tasks": sorted({t.task for t, _ in occ if t.task})})
            out.records.append(Record(name=first[1], samples_ms=[row[2][2] for _, row in occ],
                                      where=f"{path.name}:{first[3]}", settings={"format": "dnndk"},
                                      extra=extra))
        return out
