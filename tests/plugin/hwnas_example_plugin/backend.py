"""Backend ``example-torchscript``: the profilers' torch module traced with TorchScript.

A real, if modest, second runtime: tracing removes Python dispatch from the timed call,
so small blocks time lower than in eager mode while computing the same numbers.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from hwnas.profilers.backends.base import Backend, Prepared, Target
from hwnas.registry import register


@register("backend", "example-torchscript")
class TorchScriptBackend(Backend):
    """torch.jit.trace of the eager module, CPU only (example plugin)."""

    name = "example-torchscript"

    def backend_settings(self) -> dict[str, Any]:
        return {"mode": "torchscript-trace", "threads": self.threads}

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        import torch

        from hwnas.nn.builders import build, example_input

        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        x = example_input(target, batch)
        with torch.inference_mode():
            traced = torch.jit.trace(build(target), x, check_trace=False)

        def run() -> Any:
            with torch.inference_mode():
                return traced(x)

        def output() -> np.ndarray:
            return run().numpy()

        return Prepared(run, output, overhead_s={"compile": time.perf_counter() - t0})
