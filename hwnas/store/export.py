"""Export of a store's measurements (``hwnas store export``, pandas): a mixin of
:class:`hwnas.store.db.Store`, kept apart so the store's own module stays about storage."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from hwnas.inputs import output_file
from hwnas.store.records import canonical_json


class Exports:
    """Rows as flat dicts, CSV and DataFrames over :meth:`Store.query` filters."""

    query: Any  # provided by Store

    EXPORT_COLUMNS = ("id", "kind", "target", "network", "position", "device_name", "device_fp", "backend",
                      "settings", "n", "median_ms", "mean_ms", "std_ms", "latency_ms", "flagged", "energy_mj",
                      "power_w", "error", "source", "created", "samples", "evidence")

    def export_rows(self, **filters: Any) -> list[dict[str, Any]]:
        rows = self.query(**filters)
        out = []
        for r in rows:
            out.append({k: (canonical_json(r[k]) if isinstance(r[k], (dict, list)) else r[k])
                        for k in self.EXPORT_COLUMNS})
        return out

    def export_csv(self, dest: str | Path | Any, **filters: Any) -> int:
        if isinstance(dest, (str, Path)):
            output_file(dest, "CSV file")
        rows = self.export_rows(**filters)  # read everything first: a damaged store writes no file
        fh = open(dest, "w", newline="") if isinstance(dest, (str, Path)) else dest
        try:
            w = csv.DictWriter(fh, fieldnames=list(self.EXPORT_COLUMNS))
            w.writeheader()
            w.writerows(rows)
        finally:
            if isinstance(dest, (str, Path)):
                fh.close()
        return len(rows)

    def to_dataframe(self, **filters: Any) -> Any:
        import pandas as pd

        return pd.DataFrame(self.query(**filters))
