"""TVM backend: Relax from ONNX, compiled for ``llvm`` (CPU) or ``cuda``.

Untuned by default: on CPU the legalised operators are naive loops (typically tens of
times slower than onnxruntime), which is the honest cost of TVM without tuning, and the
settings say ``untuned`` so such rows are never mixed with tuned ones. With
``tune_trials > 0`` MetaSchedule tunes each item into a persistent database folder
(``tuning_dir``, next to the store by default); a marker file records which items
have been tuned with how many trials, so a rerun only applies the database.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ConfigError, DependencyError, ProfilingError, require
from hwnas.inputs import first_line
from hwnas.primitives import Primitive
from hwnas.profilers.backends.base import Backend, OnnxTarget, Prepared, Target
from hwnas.registry import register

log = logging.getLogger(__name__)


def cuda_arch(compute_version: str) -> str:
    """TVM's ``arch`` for a CUDA compute capability (``"8.6"`` -> ``"sm_86"``)."""
    major, _, minor = str(compute_version).partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise DependencyError(f"TVM reports CUDA compute version {compute_version!r}, expected 'MAJOR.MINOR'")
    return f"sm_{major}{minor}"


@register("backend", "tvm")
class TvmBackend(Backend):
    """Apache TVM Relax (ONNX frontend), target llvm or cuda, optional MetaSchedule tuning."""

    name = "tvm"
    takes_gpu_index = True

    def parse_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = set(options) - {"tune_trials", "tuning_dir", "gpu_index"}
        if unknown:
            raise ConfigError(f"backend tvm: unknown option(s) {', '.join(sorted(unknown))}")
        gpu = self.parse_gpu_index({k: v for k, v in options.items() if k == "gpu_index"})
        trials = int(options.get("tune_trials") or 0)
        if trials < 0:
            raise ConfigError(f"backend tvm: tune_trials must be >= 0, got {trials}")
        tdir = options.get("tuning_dir")
        if trials and not tdir:
            raise ConfigError("backend tvm: tuning needs a tuning_dir for its database")
        return {"tune_trials": trials, "tuning_dir": str(tdir) if tdir else None, **gpu}

    def _tvm(self) -> Any:
        # TVM's thread pool reads TVM_NUM_THREADS once, at first use.
        os.environ.setdefault("TVM_NUM_THREADS", str(self.threads))
        return require("tvm", "tvm", "the tvm backend")

    @property
    def target_kind(self) -> str:
        return "cuda" if self.device == "gpu" else "llvm"

    def runtime_device(self, tvm: Any) -> Any:
        """The TVM device the VM runs on: CUDA GPU ``gpu_index`` (``--gpu-index``) or the CPU."""
        return tvm.cuda(self.gpu_index) if self.target_kind == "cuda" else tvm.cpu(0)

    def check_device(self) -> None:
        tvm = self._tvm()
        if self.device == "gpu" and not tvm.cuda(self.gpu_index).exist:
            raise DependencyError(
                f"TVM cannot drive CUDA GPU {self.gpu_index} (no such GPU, or a TVM build without CUDA): "
                "install a CUDA-enabled apache-tvm build on a machine with a GPU, or pick another --gpu-index")

    def backend_settings(self) -> dict[str, Any]:
        trials = self.options["tune_trials"]
        return {"target": self.target_kind, "tuning": f"metaschedule-{trials}" if trials else "untuned",
                "num_threads": self.threads}

    def versions(self) -> dict[str, str]:
        return {"tvm": str(self._tvm().__version__)}

    def _target(self) -> Any:
        tvm = self._tvm()
        if self.target_kind == "cuda":
            # Compile for the GPU that runs it: a bare "cuda" target takes its arch from GPU 0.
            return tvm.target.Target({"kind": "cuda", "arch": cuda_arch(self.runtime_device(tvm).compute_version)},
                                     host="llvm")
        return tvm.target.Target({"kind": "llvm", "num-cores": self.threads})

    def _marker(self) -> Path:
        return Path(self.options["tuning_dir"]) / self.target_kind / "tuned.json"

    def _already_tuned(self, ident: str) -> bool:
        try:
            done = json.loads(self._marker().read_text())
        except (OSError, ValueError):
            return False
        return int(done.get(ident, 0)) >= self.options["tune_trials"]

    def _mark_tuned(self, ident: str) -> None:
        m = self._marker()
        try:
            done = json.loads(m.read_text())
        except (OSError, ValueError):
            done = {}
        done[ident] = self.options["tune_trials"]
        tmp = m.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1, sort_keys=True))
        tmp.replace(m)

    def compile(self, onnx_bytes: bytes, ident: str) -> Any:
        """ONNX bytes -> Relax VM executable (tuning first when asked)."""
        tvm = self._tvm()
        import onnx
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx

        try:
            mod = from_onnx(onnx.load_from_string(onnx_bytes), keep_params_in_input=False)
        except Exception as exc:
            raise ProfilingError(f"TVM ONNX frontend: {type(exc).__name__}: {exc}") from exc
        target = self._target()
        trials = self.options["tune_trials"]
        try:
            if trials:
                work = Path(self.options["tuning_dir"]) / self.target_kind
                work.mkdir(parents=True, exist_ok=True)
                todo = 0 if self._already_tuned(ident) else trials
                mod = relax.pipeline.static_shape_tuning_pipeline(
                    total_trials=todo, target=target, work_dir=str(work), max_trials_per_task=todo or None)(mod)
                if todo:
                    self._mark_tuned(ident)
            else:
                mod = relax.transform.DecomposeOpsForInference()(mod)
                if self.target_kind == "cuda":
                    from tvm import dlight as dl

                    mod = relax.transform.LegalizeOps()(mod)
                    with target:
                        mod = dl.ApplyDefaultSchedule(dl.gpu.Fallback())(mod)
            return tvm.compile(mod, target=target)
        except ProfilingError:
            raise
        except Exception as exc:
            raise ProfilingError(f"TVM compile failed: {type(exc).__name__}: {first_line(exc, 300)}") from exc

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        tvm = self._tvm()
        from tvm import relax

        from hwnas.nn.builders import example_input
        from hwnas.nn.export import export_bytes

        onnx_model = isinstance(target, OnnxTarget)
        ident = target.key if isinstance(target, Primitive) else target.ident if onnx_model else target.hash
        t0 = time.perf_counter()
        model = target.data if onnx_model else export_bytes(target, batch)
        t1 = time.perf_counter()
        ex = self.compile(model, f"{ident} b{batch}")
        dev = self.runtime_device(tvm)
        vm = relax.VirtualMachine(ex, dev)
        t2 = time.perf_counter()
        arrays = list(target.feeds().values()) if onnx_model else [example_input(target, batch).numpy()]
        xs = [tvm.runtime.tensor(a, device=dev) for a in arrays]
        fn = vm["main"]

        def run() -> Any:
            return fn(*xs)

        def output() -> np.ndarray:
            out = run()
            while isinstance(out, (list, tuple)) or type(out).__name__ == "Array":
                out = out[0]
            return np.asarray(out.numpy())

        sync = dev.sync if self.target_kind == "cuda" else None
        return Prepared(run, output, sync=sync, overhead_s={"export": t1 - t0, "compile": t2 - t1})
