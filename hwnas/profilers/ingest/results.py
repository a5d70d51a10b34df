"""hwnas-results v1 files (CSV and JSON), written by whoever ran an exported bundle.

The schema is fixed in docs/offline-results.md. Names are bundle manifest names or
primitive keys; they are resolved later (ingest core) and, unlike profiler logs, an
unknown name is an error: a results file exists to answer a bundle, so a name it
cannot place means the wrong manifest was given. A failed item (``error`` set) is kept
as data, as everywhere in the store.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping

from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record, fail, read_lines
from hwnas.registry import register

COLUMNS = ("name", "latency_ms", "samples_ms", "energy_mj", "power_w", "error")
MAGIC = "# hwnas-results v1"


def _row_record(path: Path, where: str, line: int | None, row: Mapping[str, Any], settings: dict[str, Any]) -> Record:
    """Validate one result (a row of either form: the fields of ``COLUMNS``) into a Record."""
    name, latency, samples, error = row.get("name"), row.get("latency_ms"), row.get("samples_ms"), row.get("error")

    def num(v: Any, what: str) -> float | None:
        if v is None or v == "":
            return None
        if isinstance(v, str):
            try:
                val = float(v)
            except ValueError:
                raise fail(path, line, f"{where}expected a number for {what}, got {v!r}") from None
            if not math.isfinite(val):
                raise fail(path, line, f"{where}expected a finite number for {what}, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise fail(path, line, f"{where}expected a number for {what}, got {v!r}")
        else:
            val = float(v)
        if val < 0:
            raise fail(path, line, f"{where}expected {what} >= 0, got {v!r}")
        return val

    if not isinstance(name, str) or not name.strip():
        raise fail(path, line, f"{where}expected a non-empty name, got {name!r}")
    lat = num(latency, "latency_ms")
    if isinstance(samples, str):
        samples = samples.split()
    if samples in (None, ""):
        samples = []
    if not isinstance(samples, list):
        raise fail(path, line, f"{where}expected samples_ms as a list of numbers, got {samples!r}")
    vals = [v for v in (num(s, "samples_ms") for s in samples) if v is not None]
    err = error if isinstance(error, str) and error.strip() else None
    if error not in (None, "") and not isinstance(error, str):
        raise fail(path, line, f"{where}expected error as text or empty, got {error!r}")
    if err is None and lat is None and not vals:
        raise fail(path, line, f"{where}expected latency_ms (or samples_ms, or an error), got none")
    return Record(name=name.strip(), samples_ms=vals if vals or lat is None else [lat], where=f"{path.name}:{line}",
                  median_ms=lat, energy_mj=num(row.get("energy_mj"), "energy_mj"),
                  power_w=num(row.get("power_w"), "power_w"), error=err,
                  settings=dict(settings))


class _ResultsBase(LatencyFormat):
    backend = "offline"
    strict_names = True


@register("ingest_format", "csv")
class ResultsCsvFormat(_ResultsBase):
    """hwnas-results v1, CSV form (docs/offline-results.md)."""

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        lines = read_lines(path)
        if lines[0].strip() != MAGIC:
            raise fail(path, 1, f"expected {MAGIC!r} as the first line, got {lines[0][:40]!r}")
        out = Parsed(path, "csv")
        header: list[str] | None = None
        header_line = 0
        for i, text in enumerate(lines, start=1):
            if text.startswith("#"):
                if ":" in text:
                    k, v = text[1:].split(":", 1)
                    out.notes[k.strip()] = v.strip()
                continue
            if not text.strip():
                continue
            cells = next(csv.reader([text]))
            if header is None:
                header, header_line = [c.strip() for c in cells], i
                unknown = [c for c in header if c not in COLUMNS]
                if unknown or "name" not in header or "latency_ms" not in header:
                    raise fail(path, i, f"expected a header of {', '.join(COLUMNS)} (name and latency_ms "
                                        f"required), got {text[:80]!r}")
                continue
            if len(cells) != len(header):
                raise fail(path, i, f"expected {len(header)} fields as in the header of line {header_line}, "
                                    f"got {len(cells)}")
            row = dict(zip(header, cells))
            out.records.append(_row_record(path, "", i, row, {"format": "hwnas-results"}))
        if "backend" in out.notes:
            out.backend = str(out.notes["backend"])
        if not out.records:
            raise fail(path, len(lines), "expected a header and at least one result row, got none")
        return out


@register("ingest_format", "json")
class ResultsJsonFormat(_ResultsBase):
    """hwnas-results v1, JSON form (docs/offline-results.md)."""

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        text = "\n".join(read_lines(path))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail(path, exc.lineno, f"expected valid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != "hwnas-results" or data.get("version") != 1:
            raise fail(path, 1, "expected {\"format\": \"hwnas-results\", \"version\": 1, \"results\": [...]}")
        results = data.get("results")
        if not isinstance(results, list) or not results:
            raise fail(path, None, "expected a non-empty 'results' list")
        settings = data.get("settings") or {}
        if not isinstance(settings, dict):
            raise fail(path, None, f"expected 'settings' as an object, got {settings!r}")
        out = Parsed(path, "json", backend=data.get("backend") or None,
                     notes={k: data[k] for k in ("device",) if k in data})
        for i, item in enumerate(results):
            where = f"results[{i}]: "
            if not isinstance(item, dict):
                raise fail(path, None, f"{where}expected an object, got {item!r}")
            unknown = set(item) - set(COLUMNS)
            if unknown:
                raise fail(path, None, f"{where}expected fields {', '.join(COLUMNS)}, got unknown {sorted(unknown)}")
            rec = _row_record(path, where, None, item, {"format": "hwnas-results", **settings})
            rec.where = f"{path.name}: results[{i}]"
            out.records.append(rec)
        return out
