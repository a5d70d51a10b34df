"""Trainers: the search loop with checkpoints."""
from __future__ import annotations

from hwnas.search.trainers import async_ray, differentiable, simple  # noqa: F401  (register)

__all__ = ["async_ray", "differentiable", "simple"]
