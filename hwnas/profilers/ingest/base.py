"""Records and helpers shared by every offline-ingest parser.

A parser turns one file into :class:`Parsed`: latency :class:`Record` s (one per layer,
subgraph, block or results row) plus :class:`Skipped` items with a reason. Parsers only
read; they never touch the store. Keeping parsing separate from writing is what lets
:mod:`hwnas.profilers.ingest.core` validate every file completely before a single row is
stored, so a bad file is rejected whole.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hwnas.errors import IngestError
from hwnas.primitives import NetworkSpec, Primitive

#: Value printed by vaitrace for numbers under 0.001.
APPROX_ZERO = "~0"


@dataclass
class Record:
    """One latency item as read from a file, before it is mapped to an hwnas target.

    ``samples_ms`` holds one value per aggregate the tool reported (one DNNDK table, one
    aw_nas entry, one vaitrace row): the tools print averages, not raw runs, so each
    sample is already a mean over the tool's own repetitions. ``primitive`` /
    ``network`` are set when the format itself carries the shapes (aw_nas, manifests).
    """

    name: str
    samples_ms: list[float]
    where: str                                  # "file:line" of the row, for messages
    primitive: Primitive | None = None
    network: NetworkSpec | None = None
    energy_mj: float | None = None
    power_w: float | None = None
    error: str | None = None
    #: The file's own median when it states one beside raw samples (hwnas-results).
    median_ms: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """An item that was read but deliberately not stored, and why."""

    where: str
    name: str
    reason: str


@dataclass
class Parsed:
    """Everything one file yielded."""

    path: Path
    fmt: str
    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: Per-file facts worth showing (tables averaged, header variant, ...).
    notes: dict[str, Any] = field(default_factory=dict)
    #: Backend named inside the file (hwnas-results JSON); None = the format's default.
    backend: str | None = None


class LatencyFormat:
    """Base of the registered latency parsers (role ``ingest_format``).

    Subclasses set ``backend`` (default backend name for the store), ``precision``
    (what the device computes in; the DPU formats are int8) and implement
    :meth:`parse` and :meth:`example`.

    Contract (checked by the suite in ``testing/ingest_format.py``): built with no arguments;
    :meth:`parse` of the :meth:`example` file returns :class:`Parsed` with at least one
    record, each with a name, a ``where`` naming the file, and finite samples >= 0 (or
    an error); ``hwnas ingest`` plans measurements from it; an empty or garbage file
    raises an :class:`~hwnas.errors.IngestError` whose message names the file.
    """

    backend: ClassVar[str] = "offline"
    precision: ClassVar[str] = "fp32"
    #: True when records name layers that need a mapping to become primitives.
    needs_mapping: ClassVar[bool] = True
    #: True when an unresolvable name is an error (results files name their targets);
    #: False when it may become an opaque ``dpu_layer`` primitive (profiler logs).
    strict_names: ClassVar[bool] = False

    def parse(self, path: Path) -> Parsed:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def example(cls, tmp_dir: Path) -> Path:
        """Write a short valid file of this format under ``tmp_dir`` and return its path
        (the contract suite parses and plans it). Every format must provide one: the built-ins
        in ``testing/examples.py``, a plugin's format here."""
        raise NotImplementedError(f"{cls.__name__} writes no example file; define the classmethod "
                                  "example(tmp_dir) -> Path (see hwnas.profilers.ingest.base.LatencyFormat)")


def fail(path: Path | str, line: int | None, message: str) -> IngestError:
    """An IngestError whose text starts with ``file:line:`` like a compiler message."""
    name = Path(path).name
    where = f"{name}:{line}" if line is not None else name
    return IngestError(f"{where}: {message}")


def read_lines(path: Path) -> list[str]:
    """The file's lines without line endings; an unreadable or empty file is an error."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise fail(path, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise fail(path, None, f"expected UTF-8/ASCII text, got undecodable bytes at offset {exc.start}") from None
    except OSError as exc:
        raise fail(path, None, f"cannot read ({exc.strerror})") from None
    if not text.strip():
        raise fail(path, None, "the file is empty")
    return text.splitlines()


def number(token: str, path: Path, line: int, what: str, *, allow_approx: bool = False) -> float:
    """Parse a finite float or raise naming the file, line and the column expected."""
    tok = token.strip()
    if allow_approx and tok == APPROX_ZERO:
        return 0.0
    try:
        value = float(tok.rstrip("%"))
    except ValueError:
        raise fail(path, line, f"expected a number for {what}, got {tok!r}") from None
    if not math.isfinite(value):
        raise fail(path, line, f"expected a finite number for {what}, got {tok!r}")
    return value


def decimals(token: str) -> int:
    """Digits after the decimal point of a printed number (rounding tolerance)."""
    tok = token.strip().rstrip("%")
    return len(tok.split(".", 1)[1]) if "." in tok else 0
