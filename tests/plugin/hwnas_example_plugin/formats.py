"""Formats ``example-tsv`` (latency) and ``example-mw`` (power): two tiny text formats.

``example-tsv``: a first line ``# example-tsv``, then ``NAME<TAB>MS[<TAB>MS...]`` per
item; NAME is a primitive key or a layer name. ``example-mw``: ``SECONDS MILLIWATTS``
per line.
"""
from __future__ import annotations

from pathlib import Path

from hwnas.primitives import Primitive
from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record, fail, number, read_lines
from hwnas.profilers.ingest.power import PowerFormat, PowerLog
from hwnas.registry import register

MAGIC = "# example-tsv"


@register("ingest_format", "example-tsv")
class ExampleTsvFormat(LatencyFormat):
    """NAME<TAB>MS... lines after a '# example-tsv' line (example plugin)."""

    backend = "example-board"

    @classmethod
    def example(cls, tmp_dir: Path) -> Path:
        key = Primitive("conv", 8, 8, 8, 8, kernel=3, act="relu").key
        path = tmp_dir / "latency.tsv"
        path.write_text(f"{MAGIC}\n{key}\t0.51\t0.49\t0.50\nlayer_fc\t0.12\n")
        return path

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        lines = read_lines(path)
        if lines[0].strip() != MAGIC:
            raise fail(path, 1, f"expected {MAGIC!r} as the first line, got {lines[0][:40]!r}")
        out = Parsed(path, "example-tsv")
        for i, text in enumerate(lines[1:], start=2):
            if not text.strip():
                continue
            cells = text.split("\t")
            if len(cells) < 2:
                raise fail(path, i, "expected NAME<TAB>MS[<TAB>MS...]")
            samples = [number(c, path, i, "latency (ms)") for c in cells[1:]]
            out.records.append(Record(cells[0].strip(), samples, f"{path.name}:{i}", settings={"format": "example-tsv"}))
        if not out.records:
            raise fail(path, None, "expected at least one NAME<TAB>MS line")
        return out


@register("power_format", "example-mw")
class ExampleMilliwattFormat(PowerFormat):
    """SECONDS MILLIWATTS per line (example plugin)."""

    @classmethod
    def example(cls, tmp_dir: Path) -> tuple[Path, str | None]:
        path = tmp_dir / "power.txt"
        path.write_text("".join(f"{100 + t * 0.5} {2500 + 10 * t}\n" for t in range(8)))
        return path, None

    @staticmethod
    def parse(path: Path, rails: str | None) -> PowerLog:
        path = Path(path)
        times, watts = [], []
        for i, text in enumerate(read_lines(path), start=1):
            toks = text.split()
            if len(toks) != 2:
                raise fail(path, i, f"expected 'SECONDS MILLIWATTS', got {len(toks)} field(s)")
            times.append(number(toks[0], path, i, "seconds"))
            watts.append(number(toks[1], path, i, "milliwatts") / 1000.0)
        if len(times) < 2:
            raise fail(path, None, f"expected at least 2 samples, got {len(times)}")
        return PowerLog(path, "example-mw", times, watts, ["total"])
