"""Reading what users hand us, at the edge: files, paths and values, with bounded errors.

Why one module: every entry point reads files (configs, tables, logs, manifests, model
folders, run directories) and writes outputs, and every one of them must turn a bad
byte, a missing permission, a directory where a file was expected or a gigantic value
into one short line that names the place — never a traceback, never a 2 GB message.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from hwnas.errors import InputError

#: Longest rendering of a user value inside an error message.
MAX_VALUE_CHARS = 80


def short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (values from files can be huge or
    self-referential through YAML aliases, so never format them whole)."""
    if isinstance(value, (list, tuple, dict, set)):
        text = _short_container(value, limit)
    else:
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
            text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_container(value: Any, limit: int) -> str:
    """A prefix of a container's repr built item by item, so a shared-reference bomb is
    never expanded."""
    if isinstance(value, dict):
        items = [f"{short(k, limit)}: {short(v, limit)}" for _, (k, v) in zip(range(8), value.items())]
        open_, close = "{", "}"
    else:
        items = [short(v, limit) for _, v in zip(range(8), value)]
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")") if isinstance(value, tuple) else ("{", "}")
    body = ", ".join(items)
    if len(value) > 8:
        body += ", ..."
    return open_ + body[:limit] + close


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The file's bytes; missing, unreadable and directory paths are one-line errors."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: expected a {what}, got a directory")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: {what} not found") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read {what} ({describe_os_error(exc)})") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """UTF-8 text of a file; an undecodable byte is named by its offset."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: {what} is not UTF-8 text (undecodable byte at offset {exc.start})") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parsed JSON; syntax errors name the line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON ({exc.msg})") from None


def read_csv(path: str | Path, what: str = "CSV table", **kwargs: Any) -> Any:
    """A pandas DataFrame of a UTF-8 CSV (``.gz`` too); errors are one line naming the file."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: expected a {what}, got a directory")
    if not p.exists():
        raise InputError(f"{p}: {what} not found")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: {what} is an empty file (expected a header line and rows)")
    try:
        return pd.read_csv(p, encoding="utf-8", **kwargs)
    except (*_DECOMPRESSION_ERRORS, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, _DECOMPRESSION_ERRORS) \
                and p.suffix.lower() not in COMPRESSED_SUFFIXES:
            raise InputError(f"{p}: cannot read {what} ({describe_os_error(exc)})") from None
        # .gz/.bz2/.xz/.zip/.zst are decompressed by extension: a cut or damaged archive
        raise InputError(f"{p}: compressed {what} is truncated or corrupt ({type(exc).__name__}: "
                         f"{first_line(exc, 100)})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: {what} is not UTF-8 text (undecodable byte at offset {exc.start})") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: not a readable {what} ({short(first, 120)})") from None


def _decompression_errors() -> tuple[type[BaseException], ...]:
    """What the standard decompressors raise on damaged input (gzip's BadGzipFile and
    bz2's are OSErrors, caught after these)."""
    import lzma
    import zipfile
    import zlib

    return (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


_DECOMPRESSION_ERRORS = _decompression_errors()

#: Suffixes pandas decompresses by (a damaged one raises OSError with bz2 and gzip).
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst", ".tar")


def output_file(path: str | Path, what: str = "output file") -> Path:
    """Check an output file path before any work starts: not a directory, parent folder
    existing and writable (created when missing would hide typos, so it is not)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: {what} is a directory; give a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{p}: folder {parent} is not writable")
    return p


def output_dir(path: str | Path, what: str = "output folder", *, create: bool = True, parents: bool = False) -> Path:
    """Check (and create) an output folder: not an existing file; its parent must exist
    unless ``parents`` (for defaults chosen by hwnas, not typed by the user)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{p}: {what} is a file; give a folder")
    if not p.exists():
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.exists() and not parents:
            raise InputError(f"{p}: parent folder {parent} does not exist")
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{p}: {parent} is a file, not a folder")
        if create:
            try:  # another process (a DDP rank) may create it between the check and here
                p.mkdir(parents=parents, exist_ok=True)
            except OSError as exc:
                raise InputError(f"{p}: cannot create {what} ({describe_os_error(exc)})") from None
    elif not os.access(p, os.W_OK):
        raise InputError(f"{p}: {what} is not writable")
    return p


def finite(value: Any, what: str) -> float:
    """A finite float or a one-line error naming ``what``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a number, got {short(value)}") from None
    if not math.isfinite(v):
        raise InputError(f"{what}: expected a finite number, got {short(value)}")
    return v


#: Largest cost value a table may hold (in its unit, ms or mJ): beyond it a value is a unit
#: or export error, and squares of it overflow float64 inside the metrics.
MAX_COST_VALUE = 1e9


def numeric_column(df: Any, column: str, path: str | Path, *, allow_zero: bool = True,
                   max_value: float = MAX_COST_VALUE) -> tuple[Any, int]:
    """``df[column]`` as floats with missing values dropped; returns (values, number dropped).

    A value that is not a number, infinite or negative is an error naming the CSV line
    (header = line 1): a negative latency would let a search "find" an impossible net.
    """
    import pandas as pd

    raw = df[column]
    vals = pd.to_numeric(raw, errors="coerce")
    bad_text = vals.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad_text.any():
        i = int(bad_text.to_numpy().nonzero()[0][0])
        raise InputError(f"{path}:{i + 2}: column {column!r}: expected a number, got {short(raw.iloc[i])}")
    arr = vals.to_numpy(dtype=float)
    finite_or_nan = ~(arr == float("inf")) & ~(arr == float("-inf"))
    bad = ~finite_or_nan | (arr < 0) | ((arr == 0) if not allow_zero else False) | (arr > max_value)
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise InputError(f"{path}:{i + 2}: column {column!r}: expected a finite value in [0, {max_value:g}], "
                         f"got {arr[i]}")
    missing = int(vals.isna().sum())
    return vals.dropna(), missing


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (or its type name), cut to ``limit``."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (model manifests and shipped assets)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
