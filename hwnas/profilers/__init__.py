"""Profiling toolflow: torch builders, ONNX export, backends, timing, job runner, bundles.

Heavy dependencies (onnxruntime, TVM, NVML) are imported lazily inside the modules that
need them, so ``import hwnas.profilers`` stays cheap.
"""
from __future__ import annotations
