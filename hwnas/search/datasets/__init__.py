"""Datasets: local files only, seeded splits."""
from __future__ import annotations

from hwnas.search.datasets import builtin, files  # noqa: F401  (register)
from hwnas.search.datasets.sourced import ArrayDataset, SourceDataset

__all__ = ["ArrayDataset", "SourceDataset"]
