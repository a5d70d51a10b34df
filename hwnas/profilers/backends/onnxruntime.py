"""onnxruntime backend: export to ONNX, one InferenceSession per item.

CPUExecutionProvider by default; the CUDA provider on ``--device gpu`` (needs
onnxruntime-gpu and a GPU; ``gpu_index`` picks the GPU). Threads are fixed through
SessionOptions so a latency table says how many cores it used.

On the GPU, inputs and outputs are bound on the device with I/O binding (the input
copied there once, the output buffer allocated there once), so a timed run is the
kernels alone: ``session.run`` with NumPy arrays would time a host-to-device copy of the
input and a device-to-host copy of the output in every call.
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
    takes_gpu_index = True

    def parse_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return self.parse_gpu_index(options)

    def _ort(self) -> Any:
        return require("onnxruntime", "gpu", "the onnxruntime backend")

    @property
    def providers(self) -> list[Any]:
        if self.device == "gpu":
            return [("CUDAExecutionProvider", {"device_id": self.gpu_index})]
        return ["CPUExecutionProvider"]

    def check_device(self) -> None:
        ort = self._ort()
        if self.device == "gpu" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise DependencyError(
                "onnxruntime has no CUDAExecutionProvider (no GPU, or the CPU-only package): "
                "pip install 'hwnas[gpu]' on a machine with CUDA")

    def backend_settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"providers": ["CUDAExecutionProvider"] if self.device == "gpu" else
                               ["CPUExecutionProvider"], "graph_optimization": "all",
                               "intra_op_num_threads": self.threads}
        if self.device == "gpu":
            out["io_binding"] = True  # host copies are not timed (rows timed before differ)
        return out

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
        if self.device == "gpu":
            run, output = self._bound(sess, x[INPUT_NAME])
            return Prepared(run, output, overhead_s={"export": t1 - t0, "compile": t2 - t1},
                            info={"io_binding": True})
        out_names = [o.name for o in sess.get_outputs()]
        run_options = None

        def run() -> Any:
            return sess.run(out_names, x, run_options)

        def output() -> np.ndarray:
            return np.asarray(run()[0])

        return Prepared(run, output, overhead_s={"export": t1 - t0, "compile": t2 - t1})

    def _bound(self, sess: Any, x: np.ndarray) -> tuple[Any, Any]:
        """(run, output) with the input and outputs living on GPU ``gpu_index``."""
        from hwnas.profilers.export import INPUT_NAME

        ort = self._ort()
        idx = self.gpu_index
        binding = sess.io_binding()
        x_dev = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), "cuda", idx)
        binding.bind_ortvalue_input(INPUT_NAME, x_dev)
        outs = []
        for o in sess.get_outputs():
            if all(isinstance(d, int) for d in o.shape):  # static shape: one buffer, reused
                buf = ort.OrtValue.ortvalue_from_shape_and_type(list(o.shape), np.float32, "cuda", idx)
                binding.bind_ortvalue_output(o.name, buf)
                outs.append(buf)
            else:
                binding.bind_output(o.name, "cuda", idx)

        def run() -> Any:
            sess.run_with_iobinding(binding)  # returns once the CUDA stream is done

        def output() -> np.ndarray:
            run()
            return np.asarray(binding.copy_outputs_to_cpu()[0])

        return run, output
