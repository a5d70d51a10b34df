"""Profiling toolflow: backends, timing, device fingerprint, jobs with leases, offline
bundles, ingest of foreign measurements, and measuring a device's fusion / layout rules.

Floor: below :mod:`hwnas.cost_models` and the search engine, which it never imports (the
kernel job's adaptive advice is passed in by the caller); above :mod:`hwnas.nn`, whose
torch builders, ONNX export/import and kernel detection it measures, and the store.

Heavy dependencies (onnxruntime, TVM, NVML) are imported lazily inside the modules that
need them, so ``import hwnas.profilers`` stays cheap.
"""
from __future__ import annotations
