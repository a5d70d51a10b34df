"""Profiling toolflow: torch builders, ONNX export, backends, timing, typed jobs, bundles.

Every job (a space, the kernel job, one model, the Ray farm) reads one
:class:`~hwnas.profilers.request.ProfileRequest`, talks to its measuring child through
typed messages (:mod:`hwnas.profilers.messages`) and takes leases on its items through
one skeleton (:mod:`hwnas.profilers.jobs`), so concurrent jobs on one store never
measure an item twice.

Heavy dependencies (onnxruntime, TVM, NVML) are imported lazily inside the modules that
need them, so ``import hwnas.profilers`` stays cheap.
"""
from __future__ import annotations
