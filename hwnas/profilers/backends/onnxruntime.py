"""onnxruntime backend: export to ONNX, one InferenceSession per item.

CPUExecutionProvider by default; the CUDA provider on ``--device gpu`` (needs
onnxruntime-gpu and a GPU). Threads are fixed through SessionOptions so a latency
table says how many cores it used.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from hwnas.errors import DependencyError, require
from hwnas.profilers.backends.base import Backend, Prepared, Target
from hwnas.registry import register


@register("backend", "onnxruntime")
class OnnxRuntimeBackend(Backend):
    """ONNX Runtime (CPU or CUDA execution provider), graph optimisations on."""

    name = "onnxruntime"

    def _ort(self) -> Any:
        return require("onnxruntime", "gpu", "the onnxruntime backend")

    @property
    def providers(self) -> list[str]:
        return ["CUDAExecutionProvider"] if self.device == "gpu" else ["CPUExecutionProvider"]

    def check_device(self) -> None:
        ort = self._ort()
        if self.device == "gpu" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise DependencyError(
                "onnxruntime has no CUDAExecutionProvider (no GPU, or the CPU-only package): "
                "pip install 'hwnas[gpu]' on a machine with CUDA")

    def backend_settings(self) -> dict[str, Any]:
        return {"providers": self.providers, "graph_optimization": "all", "intra_op_num_threads": self.threads}

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": str(self._ort().__version__)}

    def session(self, onnx_bytes: bytes) -> Any:
        ort = self._ort()
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(onnx_bytes, sess_options=so, providers=self.providers)

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        from hwnas.profilers.builders import example_input  # torch: imported when first needed
        from hwnas.profilers.export import INPUT_NAME, export_bytes

        t0 = time.perf_counter()
        model = export_bytes(target, batch)
        t1 = time.perf_counter()
        sess = self.session(model)
        t2 = time.perf_counter()
        x = {INPUT_NAME: example_input(target, batch).numpy()}
        out_names = [o.name for o in sess.get_outputs()]
        run_options = None

        def run() -> Any:
            return sess.run(out_names, x, run_options)

        def output() -> np.ndarray:
            return np.asarray(run()[0])

        return Prepared(run, output, overhead_s={"export": t1 - t0, "compile": t2 - t1})
