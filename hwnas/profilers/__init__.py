"""Profiling toolflow: backends, timing, device fingerprint, typed jobs with leases, offline
bundles, ingest of foreign measurements, and measuring a device's fusion / layout rules.

Every job (a space, the kernel job, one model, the Ray farm) reads one
:class:`~hwnas.profilers.request.ProfileRequest`, talks to its measuring child through
typed messages (:mod:`hwnas.profilers.messages`) and takes leases on its items through
one skeleton (:mod:`hwnas.profilers.jobs`), so concurrent jobs on one store never
measure an item twice.

Floor: below :mod:`hwnas.cost_models` and the search engine, which it never imports (the
kernel job's adaptive advice is passed in by the caller); above :mod:`hwnas.nn`, whose
torch builders, ONNX export/import and kernel detection it measures, and the store.

Heavy dependencies (onnxruntime, TVM, NVML) are imported lazily inside the modules that
need them, so ``import hwnas.profilers`` stays cheap.
"""
from __future__ import annotations
