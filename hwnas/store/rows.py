"""Decoding stored rows: JSON columns and numbers, checked.

Why its own module: a store is a file users copy, edit and damage; every value read
from it is checked here so damage is one line naming the file and the row, never a
TypeError deep inside a cost model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from hwnas.errors import StoreError

#: Number columns of a measurement row (a text there is damage, reported as such).
NUMBER_COLUMNS = ("median_ms", "mean_ms", "std_ms", "latency_ms", "energy_mj", "power_w", "n")
#: JSON columns and the type each must decode to.
JSON_COLUMNS: dict[str, type] = {"samples": list, "settings": dict, "versions": dict, "extra": dict,
                                 "evidence": dict}


def decode_json(path: Path, text: Any, what: str, expect: type = dict) -> Any:
    """``json.loads`` that names the store and the place when the text is damaged."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{path}: {what}: corrupt JSON ({str(exc)[:80]})") from None
    if not isinstance(value, expect):
        raise StoreError(f"{path}: {what}: expected a JSON {expect.__name__}, got {type(value).__name__}")
    return value


def decode_measurement(path: Path, row: Mapping[str, Any]) -> dict[str, Any]:
    """One measurement row as a dict with decoded JSON; stores older than schema v3 get
    the new fields' defaults (``latency_ms`` = the median, not flagged, no evidence)."""
    d = dict(row)
    where = f"measurement {d.get('id')}"
    for col, typ in JSON_COLUMNS.items():
        text = d.get(col)
        d[col] = decode_json(path, text, f"{where} {col}", typ) if text not in (None, "") else typ()
    for col in NUMBER_COLUMNS:
        v = d.get(col)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise StoreError(f"{path}: {where}: {col} is not a number ({str(v)[:40]!r})")
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in d["samples"]):
        raise StoreError(f"{path}: {where}: samples are not all numbers")
    d.setdefault("flagged", None)
    if d.get("latency_ms") is None:
        d["latency_ms"] = d.get("median_ms")
    return d
