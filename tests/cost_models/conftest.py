"""Shared fixtures: synthetic networks with a known non-additive law, fitted models, a store."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.cost_models import model_names, synthetic
from hwnas.cost_models.fitting import build_model

#: Few optimizer steps: enough to beat a mean predictor, fast on 2 shared cores.
FAST = {"mlp": {"steps": 300}, "lstm": {"steps": 250, "hidden": 32}, "gnn": {"steps": 200, "hidden": 32}}
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir():
    return DATA


@pytest.fixture(scope="session")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "s.sqlite"
    fill_store(path)
    return path


@pytest.fixture(scope="session")
def fast():
    return FAST


@pytest.fixture(scope="session")
def mbv2_data():
    nets, y, table = synthetic.synthetic_dataset("mbv2", n=160, seed=1, resolution=64)
    return nets[:110], y[:110], nets[110:], y[110:], table


@pytest.fixture(scope="session")
def fitted(mbv2_data):
    tr, ytr, _, _, table = mbv2_data
    return {name: build_model(name, 0, FAST.get(name)).fit(tr, ytr, table) for name in model_names(all_only=True)}


def fill_store(path: Path, n: int = 40, seed: int = 0):
    """A store with one device, primitive and network rows (latency and energy)."""
    from hwnas.store import Device, Measurement, Store

    nets, y, table = synthetic.synthetic_dataset("mbv2", n=n, seed=seed, resolution=64)
    rng = np.random.default_rng(seed)
    settings = {"repeat": 3}
    with Store(path) as st:
        dev = st.add_device(Device("testcpu", cores=2))
        ms = []
        for key, v in table.items():
            ms.append(Measurement("primitive", key, "onnxruntime", settings, samples_ms=(v, v * 1.01, v * 0.99),
                                  energy_mj=2.0 * v))
        for net, lat in zip(nets, y):
            st.add_network(net)
            ms.append(Measurement("network", net.hash, "onnxruntime", settings,
                                  samples_ms=(lat * 0.99, lat, lat * 1.01), energy_mj=2.1 * lat * rng.uniform(0.98, 1.02)))
        st.add_measurements(dev, ms)
    return nets, y, table
