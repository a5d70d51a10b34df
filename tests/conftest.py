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

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


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
