"""torch backend: eager PyTorch, the reference the other backends are checked against.

On CUDA a repeat is timed with CUDA events after synchronisation (host clocks would
measure kernel launches, not kernels); on CPU torch.set_num_threads fixes the threads.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from hwnas.errors import DependencyError, ProfilingError
from hwnas.profilers.backends.base import Backend, OnnxTarget, Prepared, Target, TorchTarget
from hwnas.registry import register


@register("backend", "torch")
class TorchBackend(Backend):
    """PyTorch eager mode (CPU threads or CUDA with events)."""

    name = "torch"
    takes_gpu_index = True

    def parse_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return self.parse_gpu_index(options)

    def check_device(self) -> None:
        import torch

        if self.device == "gpu" and not torch.cuda.is_available():
            raise DependencyError(
                f"torch {torch.__version__} sees no CUDA GPU (CPU-only build or no device): "
                "install a CUDA build of torch (see pytorch.org) on a machine with a GPU")
        if self.device == "gpu" and self.gpu_index >= torch.cuda.device_count():
            raise DependencyError(f"--gpu-index {self.gpu_index}: torch sees only {torch.cuda.device_count()} GPU(s)")

    def backend_settings(self) -> dict[str, Any]:
        return {"mode": "eager", "no_grad": True, "timer": "cuda_events" if self.device == "gpu" else "perf_counter"}

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        import torch

        from hwnas.nn.builders import build, example_input

        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        dev = torch.device("cuda", self.gpu_index) if self.device == "gpu" else torch.device("cpu")
        if isinstance(target, OnnxTarget):
            raise ProfilingError(f"{target.label}: the torch backend runs torch modules, not ONNX files "
                                 "(give --torch MODULE:FACTORY)")
        if isinstance(target, TorchTarget):
            from hwnas.nn.torch_import import load_factory

            mod = load_factory(target.factory, dict(target.options)).eval().to(dev)
            x = torch.randn(target.input_shape, generator=torch.Generator().manual_seed(0)).to(dev)
        else:
            mod = build(target).to(dev)
            x = example_input(target, batch).to(dev)
        t1 = time.perf_counter()

        def run() -> Any:
            with torch.inference_mode():
                return mod(x)

        def output() -> np.ndarray:
            return run().detach().cpu().numpy()

        sync: Callable[[], None] | None = None
        repeat_timer: Callable[[Callable[[], Any], int], float] | None = None
        if self.device == "gpu":
            def sync() -> None:
                torch.cuda.synchronize(dev)

            def repeat_timer(call: Callable[[], Any], n: int) -> float:
                with torch.cuda.device(dev):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    torch.cuda.synchronize(dev)
                    start.record()
                    for _ in range(n):
                        call()
                    end.record()
                    end.synchronize()
                    return start.elapsed_time(end) / 1000.0

        return Prepared(run, output, sync=sync, repeat_timer=repeat_timer, overhead_s={"compile": t1 - t0})
