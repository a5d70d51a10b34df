"""Backends (registry role ``backend``): onnxruntime, tvm, torch.

Importing this package registers all three; each imports its runtime lazily, so a
missing TVM only matters when the tvm backend is actually used.
"""
from __future__ import annotations

from hwnas.profilers.backends import onnxruntime, torch, tvm  # noqa: F401  (register)
from hwnas.profilers.backends.base import Backend, BackendResult, Prepared

__all__ = ["Backend", "BackendResult", "Prepared"]
