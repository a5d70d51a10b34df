"""Datasets: local files only, seeded splits."""
from __future__ import annotations

from hwnas.search.datasets import builtin, files, text  # noqa: F401  (register)
from hwnas.search.datasets.sourced import ArrayDataset, SourceDataset
from hwnas.search.detection import data as _detection  # noqa: F401  (register voc, coco)

__all__ = ["ArrayDataset", "SourceDataset"]
