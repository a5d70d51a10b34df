"""hwnas: hardware-aware neural architecture search.

Measure what networks really cost on real hardware (profilers), learn how block costs
combine into network costs (cost_models), and search for architectures under those
costs (search).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
