"""Small shared fixtures: an in-memory store, a temp store path, a tiny network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests share 2 cores; keep every torch/BLAS pool at one thread unless a test says otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from hwnas.primitives import NetworkSpec, Primitive  # noqa: E402
from hwnas.store import Device  # noqa: E402
from hwnas.testing import register_fakes  # noqa: E402

# The toy space and the fake backend are test components, never registered by hwnas itself:
# here in-process, and in every process a test starts (hwnas in a subprocess, profiling
# workers, Ray tasks) through the plugin folder tests/fakes_plugin/ on PYTHONPATH.
register_fakes()
FAKES_PLUGIN = str(Path(__file__).resolve().parent / "fakes_plugin")
os.environ["PYTHONPATH"] = os.pathsep.join([FAKES_PLUGIN, *filter(None, os.environ.get("PYTHONPATH", "").split(
    os.pathsep))])

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
#: The per-test timeout of tests marked slow (pyproject's ``timeout`` is every other test's):
#: they train or spawn processes, and on a busy 2-core machine take minutes.
SLOW_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests get the generous timeout unless they name their own."""
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite"


@pytest.fixture
def cpu_device() -> Device:
    return Device(name="test-cpu", kind="cpu", cpu_model="fake", cores=2, threads=1,
                  runtimes={"torch": "0"})


@pytest.fixture
def tiny_net() -> NetworkSpec:
    return NetworkSpec.chain(
        (3, 16, 16),
        [Primitive("conv", 3, 8, 16, 16, kernel=3, stride=2, act="relu6"),
         Primitive("mbconv", 8, 8, 8, 8, kernel=3, expansion=3, act="relu6"),
         Primitive("pool", 8, 8, 8, 8, kernel=8, extras={"mode": "global"}),
         Primitive("fc", 8, 10, 1, 1)],
        space="test")


# -- any model: small models, measured rules, a tiny kernel job ---------------------------------
TINY_PAIRS = (("conv", "relu"), ("conv", "relu6"), ("conv", "add"), ("conv-add", "relu"), ("dwconv", "relu"),
              ("dwconv", "relu6"), ("add", "relu"), ("fc", "relu"), ("conv", "hswish"), ("dwconv", "hswish"),
              ("conv", "sigmoid"), ("conv", "hsigmoid"), ("relu", "relu6"), ("conv", "scale"), ("fc", "bn"))


def small_torch_model():  # noqa: ANN201
    """conv-bn-relu stem, an inverted residual with SE and h-swish, a ShuffleNetV2 unit, a
    classifier: every kind of kernel grouping in a few milliseconds."""
    import torch
    from torch import nn

    from hwnas.zoo.blocks import ConvBNAct, InvertedResidual, ShuffleUnit, with_input

    torch.manual_seed(0)
    model = nn.Sequential(ConvBNAct(3, 16, 3, 2), InvertedResidual(16, 16, 3, 1, 48, "hswish", 16),
                          ShuffleUnit(16, 32, 1 + 1), ShuffleUnit(32, 32, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(32, 10))
    return with_input(model, 32)


@pytest.fixture(scope="session")
def small_onnx(tmp_path_factory) -> Path:
    from hwnas.nn.torch_import import export_module

    m = small_torch_model()
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    path.write_bytes(export_module(m, m.input_shape))
    return path


@pytest.fixture(scope="session")
def measured_rules():
    """Layout probes and a small set of timed pairs, measured on this machine (~3 s)."""
    from hwnas.nn.kernels.rules import FusionRules
    from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
    from hwnas.profilers.fusion import measure_pairs
    from hwnas.profilers.layout import measure_layout

    be = OnnxRuntimeBackend()
    lay = measure_layout(be)
    from hwnas.profilers.timing import TimingProtocol

    proto = TimingProtocol(warmup=2, min_repeats=8, max_repeats=12, number=1, min_time_ms=0.0, sessions=1)
    pairs = measure_pairs(be, TINY_PAIRS, c=16, hw=32, protocol=proto)
    # Downstream tests must not depend on timing verdicts of microsecond kernels on a shared
    # machine: keep the measured times, decide by the structural verdict (merged) alone.
    # (The timed verdict itself is tested on real timings in profilers/test_fusion_timing.py.)
    from hwnas.profilers.fusion import measure_plain_pairs

    pairs.update(measure_plain_pairs(be, int(lay["block"]), hw=32, protocol=proto))  # as measure_rules does
    for rec in pairs.values():
        rec["timed_fused"], rec["fused"] = rec["fused"], rec["merged"]
    from hwnas.profilers.token_rules import measure_token_rules

    pairs.update(measure_token_rules(be))  # transformer pairs and patterns (structural, ~2 s)
    return FusionRules(pairs=pairs, block=lay["block"], modes=lay["modes"], conv=lay["conv"])


@pytest.fixture(scope="session")
def kernel_store(tmp_path_factory, measured_rules) -> Path:
    """A store with this machine's rules and a tiny kernel job (small random networks)."""
    from hwnas.nn.kernels.rules import KIND
    from hwnas.nn.kernels.token_blocks import TOKEN_BLOCKS
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.profilers.kernel_job import KernelJob, KernelSampling
    from hwnas.profilers.request import ProfileRequest
    from hwnas.store import Store

    path = tmp_path_factory.mktemp("kernels") / "k.sqlite"
    from hwnas.profilers.timing import TimingProtocol

    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=5, min_time_ms=0.5, time_budget_s=0.5, sessions=1)
    with Store(path) as st:
        dev_id = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev_id, "onnxruntime", KIND, measured_rules.to_dict(), {"test": True})
        KernelJob(st, ProfileRequest(networks=8, seed=1, protocol=proto, show_progress=False),
                  KernelSampling(rounds=1, max_macs=3e7, max_resolution=64,
                                 weights={"mbconv_se": 4.0, "shuffle": 4.0, "dense": 0.0, "nb201": 0.0,
                                          # the convolutional networks of before: token families
                                          # have their own job in tests/nn/kernels/test_token_job.py
                                          **{b: 0.0 for b in TOKEN_BLOCKS}})).run()
    return path


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for every Ray test (starting one costs seconds): 2 CPUs and a
    custom resource ``fakedev`` standing for an attached device of a profiling farm."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'hwnas[ray]')")
    if ray.is_initialized():  # e.g. the async trainer's contract case started a plain local one
        ray.shutdown()
    ray.init(num_cpus=2, resources={"fakedev": 2}, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()
