"""Backends: a profiled conv really runs, the three backends agree on outputs, export
loads everywhere, GPU requests fail with one line when there is no GPU."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from hwnas import registry
from hwnas.errors import DependencyError
from hwnas.nn.export import export_bytes, export_onnx
from hwnas.primitives import Primitive
from hwnas.profilers.timing import TimingProtocol

TINY_MBV2 = {"resolution": 32, "width": 0.25}
TINY_NB201 = {"channels": 4, "cells_per_stage": 1, "resolution": 16}


def _sample_prims() -> list[Primitive]:
    """A few primitives of each space plus the extra ops, chosen deterministically."""
    out: list[Primitive] = []
    for name, opts in (("mbv2", TINY_MBV2), ("nb201", TINY_NB201), ("fbnet", {"resolution": 16, "head_channels": 32})):
        prims = registry.build("search_space", name, **opts).primitives()
        out += [prims[i] for i in np.linspace(0, len(prims) - 1, 6).astype(int)]
    out += [Primitive("mbconv", 8, 8, 8, 8, kernel=5, expansion=3, act="hswish", se=True),
            Primitive("pool", 8, 8, 7, 7, kernel=3, stride=2, extras={"mode": "max"}),
            Primitive("none", 4, 4, 8, 8)]
    return list({p.key: p for p in out}.values())


def test_onnxruntime_times_a_conv_for_real(fast_protocol) -> None:
    p = Primitive("conv", 16, 32, 32, 32, kernel=3, act="relu")
    b = registry.build("backend", "onnxruntime", device="cpu", threads=1)
    res = b.measure(p, fast_protocol)
    assert len(res.samples_ms) >= fast_protocol.min_repeats
    assert all(s > 0 for s in res.samples_ms)
    assert res.overhead_s["export"] > 0 and res.overhead_s["timing"] > 0
    # 16x32x9x32x32 MACs cannot take under a microsecond: the samples are real timings.
    assert np.median(res.samples_ms) > 1e-3
    assert b.settings(fast_protocol)["backend_options"]["providers"] == ["CPUExecutionProvider"]


def test_export_is_self_contained(tmp_path: Path) -> None:
    p = Primitive("mbconv", 8, 16, 16, 16, kernel=3, stride=2, expansion=4, act="relu6")
    path = export_onnx(p, tmp_path / "m.onnx", batch=2)
    assert [f.name for f in tmp_path.iterdir()] == ["m.onnx"]  # no .onnx.data sidecar
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 8, 16, 16]


def test_onnxruntime_matches_torch_on_sampled_primitives() -> None:
    ort_b = registry.build("backend", "onnxruntime")
    torch_b = registry.build("backend", "torch")
    for p in _sample_prims():
        ref = torch_b.prepare(p).output()
        got = ort_b.prepare(p).output()
        assert got.shape == ref.shape, p.key
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4, err_msg=p.key)


@pytest.mark.tvm
def test_tvm_matches_torch_on_sampled_primitives() -> None:
    tvm_b = registry.build("backend", "tvm")
    torch_b = registry.build("backend", "torch")
    assert tvm_b.settings(TimingProtocol())["backend_options"]["tuning"] == "untuned"
    for p in _sample_prims()[::2]:
        ref = torch_b.prepare(p).output()
        got = tvm_b.prepare(p).output()
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4, err_msg=p.key)


@pytest.mark.tvm
def test_tvm_runs_a_whole_network(tiny_nb201) -> None:
    net = tiny_nb201.to_network(tiny_nb201.sample(np.random.default_rng(1)))
    ref = registry.build("backend", "torch").prepare(net).output()
    got = registry.build("backend", "tvm").prepare(net).output()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.tvm
@pytest.mark.slow
def test_tvm_tuning_is_persistent(tmp_path: Path) -> None:
    p = Primitive("conv", 4, 8, 8, 8, kernel=3, act="relu")
    b = registry.build("backend", "tvm", tune_trials=2, tuning_dir=str(tmp_path))
    assert b.settings(TimingProtocol())["backend_options"]["tuning"] == "metaschedule-2"
    out = b.prepare(p).output()
    assert out.shape == (1, 8, 8, 8)
    assert (tmp_path / "llvm" / "database_tuning_record.json").exists()
    assert p.key in (tmp_path / "llvm" / "tuned.json").read_text()
    # A second backend on the same database reuses the tuning instead of tuning again: no new records.
    records = (tmp_path / "llvm" / "database_tuning_record.json").read_text()
    again = registry.build("backend", "tvm", tune_trials=2, tuning_dir=str(tmp_path)).prepare(p).output()
    assert (tmp_path / "llvm" / "database_tuning_record.json").read_text() == records
    np.testing.assert_allclose(again, out, atol=1e-5)
    ref = registry.build("backend", "torch").prepare(p).output()
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch", pytest.param("tvm", marks=pytest.mark.tvm)])
def test_gpu_without_cuda_is_a_dependency_error(backend: str) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    b = registry.build("backend", backend, device="gpu")
    with pytest.raises(DependencyError) as exc:
        b.check_device()
    assert "\n" not in str(exc.value)


def test_cli_gpu_without_cuda_exits_2_with_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = subprocess.run([sys.executable, "-m", "hwnas.cli", "profile", "--space", "nb201", "--device", "gpu",
                        "--store", str(tmp_path / "s.sqlite")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "hwnas[gpu]" in lines[0]


def test_export_bytes_unknown_op_fails_cleanly() -> None:
    from hwnas.errors import HwnasError

    with pytest.raises(HwnasError):
        export_bytes(Primitive("no_such_op", 2, 2, 4, 4))


class _FakeTvm:
    """Just enough of the ``tvm`` module to see which device and arch the backend picks:
    two GPUs of different compute capability, so taking GPU 0's shows."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.versions = {0: "7.0", 1: "8.6"}
        self.target = SimpleNamespace(Target=lambda spec, host=None: {"spec": spec, "host": host})

    def cuda(self, i: int):
        from types import SimpleNamespace

        return SimpleNamespace(kind="cuda", index=i, exist=i in self.versions,
                               compute_version=self.versions.get(i, "-1"))

    def cpu(self, i: int):
        from types import SimpleNamespace

        return SimpleNamespace(kind="cpu", index=i, exist=True)


def test_tvm_times_and_compiles_for_the_gpu_index_it_is_given(monkeypatch) -> None:
    """`--gpu-index 1` reaches the TVM backend: its VM device and its compile arch are GPU 1's
    (sm_86), not GPU 0's (sm_70); a GPU that is not there is one line naming it."""
    from hwnas.errors import ConfigError
    from hwnas.profilers.api import backend_options
    from hwnas.profilers.backends.tvm import TvmBackend

    fake = _FakeTvm()
    monkeypatch.setattr(TvmBackend, "_tvm", lambda self: fake)
    opts = backend_options(["tvm", "onnxruntime"], "s.sqlite", gpu_index=1)
    assert opts["tvm"]["gpu_index"] == 1 and opts["onnxruntime"] == {"gpu_index": 1}
    b = TvmBackend(device="gpu", **opts["tvm"])
    b.check_device()
    dev = b.runtime_device(fake)
    assert (dev.kind, dev.index) == ("cuda", 1)
    assert b._target() == {"spec": {"kind": "cuda", "arch": "sm_86"}, "host": "llvm"}
    assert (TvmBackend(device="gpu").runtime_device(fake).index, TvmBackend(device="gpu")._target()["spec"]["arch"]) \
        == (0, "sm_70")
    cpu = TvmBackend(device="cpu", gpu_index=1).runtime_device(fake)
    assert (cpu.kind, cpu.index) == ("cpu", 0)
    with pytest.raises(DependencyError, match="^TVM cannot drive CUDA GPU 3 "):
        TvmBackend(device="gpu", gpu_index=3).check_device()
    with pytest.raises(ConfigError, match="gpu_index must be an integer >= 0, got -1"):
        TvmBackend(device="gpu", gpu_index=-1)
