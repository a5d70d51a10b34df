"""Trainers: the search loop with checkpoints."""
from __future__ import annotations

from hwnas.search.trainers import simple  # noqa: F401  (register)

__all__ = ["simple"]
