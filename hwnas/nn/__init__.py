"""The network layer everything stands on: networks as torch modules and ONNX graphs.

What lives here is neutral — no backend, no timing, no store, no fitted model — so the
profilers (which measure), the cost models (which predict) and the search engine (which
trains) can all use it without importing each other:

- :mod:`.builders` and :mod:`.cell_ops`: torch modules of primitives and DARTS cell ops
  (role ``op``), and a whole NetworkSpec as a torch module;
- :mod:`.export`: primitives and networks exported to ONNX;
- :mod:`.onnx_graph`, :mod:`.onnx_fold`, :mod:`.torch_import`: any ONNX model (or torch
  factory) imported into a shaped op graph and a NetworkSpec;
- :mod:`.kernels`: kernel detection (fused groups, composites, layout reorders) under a
  device's rules, the rules record, the node-to-kernel attribution and the random
  networks of the kernel job. Measuring the rules on a backend is the profilers' job
  (:mod:`hwnas.profilers.fusion`, :mod:`hwnas.profilers.layout`).

Floor: above the records (:mod:`hwnas.primitives`, :mod:`hwnas.store`) and the core
utilities, below :mod:`hwnas.profilers`. Torch and onnx are imported by the modules that
need them, so ``import hwnas.nn`` stays cheap.
"""
from __future__ import annotations
