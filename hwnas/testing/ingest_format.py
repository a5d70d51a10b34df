"""Contract suite of the ``ingest_format`` role (see hwnas/profilers/ingest/base.py).

The format parses its own example file (``example(tmp_dir)``); the records must be
what the ingest core maps and stores (names, where, finite samples or an error), the
whole file must plan into measurements as ``hwnas ingest --dry-run`` would, and bad
files must be refused as user errors naming the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record
from hwnas.testing._common import component, example, expect, finite
from hwnas.testing._files import check_rejects

ROLE = "ingest_format"


def check_record(name: str, path: Path, rec: Any) -> None:
    expect(isinstance(rec, Record) and isinstance(rec.name, str) and rec.name.strip(), ROLE, name,
           f"records must be Records with a name, got {rec!r}")
    expect(str(rec.where).startswith(path.name), ROLE, name, f"a record's where must start with the file name, "
                                                             f"got {rec.where!r}")
    expect(finite(rec.samples_ms) and all(s >= 0 for s in rec.samples_ms), ROLE, name,
           f"samples must be finite and >= 0, got {rec.samples_ms}")
    expect(rec.samples_ms or rec.error, ROLE, name, f"record {rec.name!r} has neither samples nor an error")
    extras = [v for v in (rec.energy_mj, rec.power_w, rec.median_ms) if v is not None]
    expect(finite(extras) and all(v >= 0 for v in extras), ROLE, name, "energy, power and median must be finite >= 0")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Parse the example, plan it into measurements, reject bad files."""
    from hwnas.profilers.ingest.core import IngestOptions, plan

    tmp_dir = Path(tmp_dir)
    cls = component(ROLE, name)
    expect(isinstance(cls, type) and issubclass(cls, LatencyFormat), ROLE, name,
           "must subclass hwnas.profilers.ingest.base.LatencyFormat")
    expect(isinstance(cls.backend, str) and cls.backend and isinstance(cls.precision, str), ROLE, name,
           "backend and precision must be non-empty strings")
    expect(isinstance(cls.needs_mapping, bool) and isinstance(cls.strict_names, bool), ROLE, name,
           "needs_mapping and strict_names must be bools")
    path = Path(example(ROLE, name, cls, tmp_dir))
    expect(path.is_file(), ROLE, name, f"example() must return the path of a file it wrote, got {path}")
    parsed = cls().parse(path)
    expect(isinstance(parsed, Parsed) and parsed.records, ROLE, name,
           "parse() of its example must return Parsed with at least one record")
    expect(isinstance(parsed.fmt, str) and parsed.fmt, ROLE, name, "Parsed.fmt must name the format")
    for rec in parsed.records:
        check_record(name, path, rec)
    expect(cls().parse(path).records == parsed.records, ROLE, name, "parsing the same file twice must agree")
    report = plan(IngestOptions(fmt=name, files=[path], device="contract-device"))
    expect(len(report.measurements) >= 1, ROLE, name, "its example must plan into at least one measurement")
    check_rejects(ROLE, name, lambda p: cls().parse(p), tmp_dir)
