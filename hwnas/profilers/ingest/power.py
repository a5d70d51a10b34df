"""Power logs and run segmentation, for energy per inference.

Three power formats, each becoming one time series (seconds, watts):

* ``pat`` — Xilinx Power Advantage Tool CSV: no header, a ctime timestamp of the logging
  PC (``Thu Nov 19 21:17:24 2020``), then 17 rails in microwatts. ``rails`` picks and
  sums columns (1-based after the timestamp); default ``VCCINT=1``, the PL core rail the
  DPU runs on. Timestamps have whole seconds and about two samples per second, so
  samples sharing a second are spread evenly inside it.
* ``hwmon`` — a log of Linux hwmon readings (``/sys/class/hwmon/*/power1_input``, µW):
  a header ``timestamp,power1_input[,more sensors...]``; default column ``power1_input``.
* ``watts`` — ``timestamp,watts`` (header optional), watts.

Timestamps may be epoch seconds or ISO ``YYYY-MM-DD HH:MM:SS[.ffffff]``; naive times are
compared as written, so a board clock and a logging PC in different time zones are
aligned with ``clock_offset_h`` (hours added to the segment times).

A logger stopped mid-write leaves a partial last line (the shipped PAT example ends in
``T``); only that case — the final line, too short — is dropped and reported. Any other
bad line rejects the whole log.
"""
from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.profilers.ingest.base import Skipped, fail, number, read_lines
from hwnas.registry import register

PAT_RAILS = 17
DEFAULT_PAT_RAILS: dict[str, int] = {"VCCINT": 1}


@dataclass
class PowerLog:
    """A power time series: ``times`` in seconds (non-decreasing), ``watts`` per sample."""

    path: Path
    fmt: str
    times: list[float]
    watts: list[float]
    rails: list[str]
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """One run window from the segmentation file (board clock, seconds)."""

    name: str
    start: float
    end: float
    line: int
    inferences: int | None = None


def parse_time(token: str) -> float:
    """Seconds from epoch floats, ISO date-times or ctime strings; ValueError otherwise."""
    tok = token.strip()
    try:
        return float(tok)
    except ValueError:
        pass
    for parse in (_dt.datetime.fromisoformat, lambda t: _dt.datetime.strptime(t, "%a %b %d %H:%M:%S %Y")):
        try:
            return parse(tok).replace(tzinfo=_dt.timezone.utc).timestamp()  # type: ignore[no-untyped-call]
        except ValueError:
            continue
    raise ValueError(tok)


def _time(token: str, path: Path, line: int) -> float:
    try:
        return parse_time(token)
    except ValueError:
        raise fail(path, line, f"expected a timestamp (epoch seconds, ISO date-time or ctime), got {token!r}") from None


def _finish(path: Path, fmt: str, rows: list[tuple[int, float, float]], rails: list[str],
            skipped: list[Skipped]) -> PowerLog:
    if len(rows) < 2:
        raise fail(path, None, f"expected at least 2 power samples, got {len(rows)}")
    for (l0, t0, _), (l1, t1, _) in zip(rows, rows[1:]):
        if t1 < t0:
            raise fail(path, l1, f"expected timestamps in order, got one earlier than line {l0}")
    return PowerLog(path, fmt, [t for _, t, _ in rows], [w for _, _, w in rows], rails, skipped)


def _last_partial(path: Path, i: int, n: int, got: int, want: int, skipped: list[Skipped]) -> bool:
    """True (and reported) when line i is the file's last line and too short."""
    if i == n and got < want:
        skipped.append(Skipped(f"{path.name}:{i}", "power sample", "incomplete last line (logger stopped mid-write)"))
        return True
    return False


def parse_pat(path: Path, rails: dict[str, int] | None = None) -> PowerLog:
    """Power Advantage Tool CSV; the selected rails (µW) are summed into watts."""
    path, rails = Path(path), dict(rails or DEFAULT_PAT_RAILS)
    for name, col in rails.items():
        if not 1 <= col <= PAT_RAILS:
            raise fail(path, None, f"expected rail {name} to be a column 1..{PAT_RAILS}, got {col}")
    lines = read_lines(path)
    rows: list[tuple[int, float, float]] = []
    skipped: list[Skipped] = []
    for i, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        f = text.split(",")
        if _last_partial(path, i, len(lines), len(f), 1 + PAT_RAILS, skipped):
            continue
        if len(f) != 1 + PAT_RAILS:
            raise fail(path, i, f"expected a timestamp and {PAT_RAILS} rail columns, got {len(f)} field(s)")
        t = _time(f[0], path, i)
        uw = sum(number(f[c], path, i, f"rail {n} (column {c}, µW)") for n, c in rails.items())
        rows.append((i, t, uw * 1e-6))
    # Spread samples that share a whole-second stamp evenly inside that second.
    spread: list[tuple[int, float, float]] = []
    j = 0
    while j < len(rows):
        k = j
        while k < len(rows) and rows[k][1] == rows[j][1]:
            k += 1
        spread += [(ln, t + (m - j) / (k - j), w) for m, (ln, t, w) in enumerate(rows[j:k], start=j)]
        j = k
    return _finish(path, "pat", spread, list(rails), skipped)


def _parse_table(path: Path, fmt: str, rails: list[str] | None, scale: float, default: list[str]) -> PowerLog:
    lines = read_lines(path)
    first = next(csv.reader([lines[0]]))
    has_header = len(first) >= 2 and not _is_float(first[1])
    header = [h.strip() for h in first] if has_header else ["timestamp", *default]
    if header[0] != "timestamp" or len(header) < 2:
        raise fail(path, 1, f"expected a header 'timestamp,{','.join(default)}', got {lines[0][:60]!r}")
    want = rails or ([c for c in default if c in header] or header[1:])
    missing = [r for r in want if r not in header]
    if missing:
        raise fail(path, 1, f"expected column {missing[0]!r} in the header, got {', '.join(header)}")
    idx = [header.index(r) for r in want]
    rows: list[tuple[int, float, float]] = []
    skipped: list[Skipped] = []
    for i, text in enumerate(lines[1:] if has_header else lines, start=2 if has_header else 1):
        if not text.strip() or text.startswith("#"):
            continue
        f = next(csv.reader([text]))
        if _last_partial(path, i, len(lines), len(f), len(header), skipped):
            continue
        if len(f) != len(header):
            raise fail(path, i, f"expected {len(header)} fields ({', '.join(header)}), got {len(f)}")
        value = sum(number(f[k], path, i, header[k]) for k in idx) * scale
        rows.append((i, _time(f[0], path, i), value))
    return _finish(path, fmt, rows, want, skipped)


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def parse_hwmon(path: Path, rails: list[str] | None = None) -> PowerLog:
    """``timestamp,power1_input[,...]`` log of hwmon readings in µW (columns summed)."""
    return _parse_table(Path(path), "hwmon", rails, 1e-6, ["power1_input"])


def parse_watts(path: Path, rails: list[str] | None = None) -> PowerLog:
    """``timestamp,watts`` CSV in watts."""
    return _parse_table(Path(path), "watts", rails, 1.0, ["watts"])


class PowerFormat:
    """Base of the registered power-log parsers (role ``power_format``).

    Contract (checked by the suite in ``testing/power_format.py``): :meth:`parse` (``rails`` is the
    format's column selection, None for its default) returns a :class:`PowerLog` of at
    least two samples with non-decreasing times and finite watts >= 0; an empty or
    garbage file raises an :class:`~hwnas.errors.IngestError` naming the file;
    :meth:`example` writes a short valid log and says which rails to read.
    """

    @staticmethod
    def parse(path: Path, rails: str | None) -> PowerLog:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def example(cls, tmp_dir: Path) -> tuple[Path, str | None]:
        """A short valid log of this format under ``tmp_dir`` and the ``rails`` to parse it with."""
        raise NotImplementedError(f"{cls.__name__} writes no example log; define the classmethod "
                                  "example(tmp_dir) -> (path, rails) (see hwnas.profilers.ingest.power.PowerFormat)")


@register("power_format", "pat")
class PatFormat(PowerFormat):
    """Xilinx Power Advantage Tool CSV (rails NAME=COLUMN, 1-based; default VCCINT=1)."""

    @staticmethod
    def parse(path: Path, rails: str | None) -> PowerLog:
        spec: dict[str, int] = {}
        for part in (rails.split(",") if rails else []):
            name, _, col = part.partition("=")
            try:
                spec[name.strip() if col else f"rail{name.strip()}"] = int(col if col else name)
            except ValueError:
                raise fail(path, None, f"expected rails as NAME=COLUMN[,...] with 1-based columns, got {rails!r}") \
                    from None
        return parse_pat(path, spec or None)


def _columns(rails: str | None) -> list[str] | None:
    return [c.strip() for c in rails.split(",")] if rails else None


@register("power_format", "hwmon")
class HwmonFormat(PowerFormat):
    """Linux hwmon log in µW: timestamp,power1_input[,...] (columns summed)."""

    @staticmethod
    def parse(path: Path, rails: str | None) -> PowerLog:
        return parse_hwmon(path, _columns(rails))


@register("power_format", "watts")
class WattsFormat(PowerFormat):
    """timestamp,watts CSV (header optional)."""

    @staticmethod
    def parse(path: Path, rails: str | None) -> PowerLog:
        return parse_watts(path, _columns(rails))


def parse_power(path: Path, fmt: str, rails: str | None = None) -> PowerLog:
    """Parse a power log of the registered format ``fmt``; ``rails`` is ``NAME=COL,...``
    (pat) or ``COL,...`` (tables)."""
    from hwnas import registry

    return registry.get("power_format", fmt).parse(path, rails)


def parse_segments(path: Path) -> list[Segment]:
    """``NAME START END [INFERENCES]`` per line; START/END may be 'date time' pairs."""
    path = Path(path)
    out: list[Segment] = []
    for i, text in enumerate(read_lines(path), start=1):
        toks = text.split()
        if not toks or toks[0].startswith("#"):
            continue
        count = None
        if len(toks) in (4, 6) and toks[-1].isdigit():
            count, toks = int(toks[-1]), toks[:-1]
        if len(toks) == 5:
            start, end = f"{toks[1]} {toks[2]}", f"{toks[3]} {toks[4]}"
        elif len(toks) == 3:
            start, end = toks[1], toks[2]
        else:
            raise fail(path, i, f"expected 'NAME START END [INFERENCES]', got {len(toks)} field(s)")
        a, b = _time(start, path, i), _time(end, path, i)
        if b < a:
            raise fail(path, i, f"expected END after START, got {start} .. {end}")
        out.append(Segment(toks[0], a, b, i, count))
    if not out:
        raise fail(path, None, "expected at least one 'NAME START END' line")
    return out
