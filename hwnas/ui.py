"""Terminal output shared by every command: tables, JSON, progress bars.

Kept in one place so commands look alike and the library itself never prints: library
code returns records; the CLI renders them with these helpers.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Iterable, Mapping, Sequence, TextIO


def fmt_value(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -(digits - 1)):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(v)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 headers: Mapping[str, str] | None = None, digits: int = 4) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    heads = [(headers or {}).get(c, c) for c in cols]
    cells = [[fmt_value(r.get(c), digits) for c in cols] for r in rows]
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in cols]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)).rstrip()

    out = [line(heads), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def emit(obj: Any, *, as_json: bool, table: str | None = None, stream: TextIO | None = None) -> None:
    """Print ``obj`` as JSON (``--json``) or the given human text."""
    stream = stream or sys.stdout
    if as_json:
        stream.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    elif table is not None:
        stream.write(table + ("\n" if not table.endswith("\n") else ""))


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             disable: bool | None = None, unit: str = "it") -> Any:
    """A tqdm progress bar on stderr with ETA; silent when stderr is not a terminal
    unless HWNAS_PROGRESS=1."""
    import os

    from tqdm.auto import tqdm

    if disable is None:
        disable = not (sys.stderr.isatty() or os.environ.get("HWNAS_PROGRESS") == "1")
    return tqdm(iterable, total=total, desc=desc, disable=disable, unit=unit, file=sys.stderr,
                dynamic_ncols=True, leave=False)
