"""hwnas: hardware-aware neural architecture search.

Measure what networks really cost on real hardware (profilers), learn how block costs
combine into network costs (cost_models), and search for architectures under those
costs (search).

The package is built in floors, and imports point down only (``make lint`` checks it with
``tools/import_contracts.py``): ``cli`` (the edge, where user input and ``asset:NAME`` are
resolved) -> ``search`` -> ``cost_models`` -> ``profilers`` -> ``nn`` (networks as torch
modules and ONNX graphs) -> records (``primitives``, ``store``, ``config``) -> core utilities
-> ``errors``. ``testing`` sits above everything and nothing in production imports it.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
