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
from hwnas.profilers.backends.base import Backend, ExportCache, OnnxTarget, Prepared, Target
from hwnas.registry import register


@register("backend", "onnxruntime")
class OnnxRuntimeBackend(Backend):
    """ONNX Runtime (CPU or CUDA execution provider), graph optimisations on."""

    name = "onnxruntime"
    takes_gpu_index = True

    def __init__(self, device: str = "cpu", threads: int = 1, **options: Any) -> None:
        super().__init__(device, threads, **options)
        self.exports = ExportCache()

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

    def session(self, onnx_bytes: bytes, *, profile_prefix: str | None = None,
                optimized_path: str | None = None) -> Any:
        """An InferenceSession with this backend's settings; ``profile_prefix`` turns on
        ONNX Runtime's per-node profiler, ``optimized_path`` saves the graph it runs."""
        ort = self._ort()
        so = ort.SessionOptions()
        if profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = profile_prefix
        if optimized_path:
            so.optimized_model_filepath = optimized_path
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(onnx_bytes, sess_options=so, providers=self.providers)

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        from hwnas.nn.builders import example_input  # torch: imported when first needed
        from hwnas.nn.export import INPUT_NAME, export_bytes

        t0 = time.perf_counter()
        if isinstance(target, OnnxTarget):
            model = target.data
        else:  # one export per target, however many sessions time it (see ExportCache)
            model, _ = self.exports.get(target, batch, lambda: export_bytes(target, batch))
        t1 = time.perf_counter()
        sess = self.session(model)
        t2 = time.perf_counter()
        x = target.feeds() if isinstance(target, OnnxTarget) else {INPUT_NAME: example_input(target, batch).numpy()}
        return self.prepared(sess, x, {"export": t1 - t0, "compile": t2 - t1})

    def prepared(self, sess: Any, x: dict[str, np.ndarray], overhead: dict[str, float]) -> Prepared:
        """A runnable over one session and fixed inputs (outputs fetched as NumPy arrays);
        on the GPU the inputs and outputs are bound to device buffers first."""
        if self.device == "gpu":
            run, output = self._bound(sess, x)
            return Prepared(run, output, overhead_s=overhead, info={"io_binding": True})
        out_names = [o.name for o in sess.get_outputs()]
        run_options = None

        def run() -> Any:
            return sess.run(out_names, x, run_options)

        def output() -> np.ndarray:
            return np.asarray(run()[0])

        return Prepared(run, output, overhead_s=overhead)

    def _bound(self, sess: Any, x: dict[str, np.ndarray]) -> tuple[Any, Any]:
        """(run, output) with the inputs and outputs living on GPU ``gpu_index``."""
        ort = self._ort()
        idx = self.gpu_index
        binding = sess.io_binding()
        for name, value in x.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), "cuda", idx))
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
