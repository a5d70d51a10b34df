"""Kernels: what a runtime really executes for an ONNX graph (fused groups, layout
reorders), the measured rules that decide it, and the tracing of profiled nodes back to
kernels. See detect.py for the pass, rules.py for the rules; measuring them is
:mod:`hwnas.profilers.fusion`.
"""
from __future__ import annotations

from hwnas.nn.kernels.detect import Kernel, KernelGraph, detect
from hwnas.nn.kernels.rules import FusionRules, load_rules

__all__ = ["FusionRules", "Kernel", "KernelGraph", "detect", "load_rules"]
