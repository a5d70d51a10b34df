"""Fixtures for the search engine: a toy space with a known optimum, config writers,
and a cost store with deterministic per-primitive latencies."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from hwnas.search.controllers.base import Controller
from hwnas.search.spaces.base import Arch, SearchSpace

DATA = Path(__file__).resolve().parents[1] / "data"
NB201_TABLE = DATA / "nb201_latency_slice.csv.gz"


def run_controller(ctrl: Controller, reward: Callable[[Arch], float], budget: int, batch: int = 1) -> float:
    """Drive a controller for ``budget`` evaluations; return the best reward seen."""
    best, used = -np.inf, 0
    while used < budget:
        rs = ctrl.sample(min(batch, budget - used))
        for r in rs:
            r.reward = float(reward(r.arch))
            r.perfs = {"score": r.reward}
            best = max(best, r.reward)
        ctrl.step(rs)
        used += len(rs)
    return float(best)


def write_config(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


@pytest.fixture
def nb201_config(tmp_path: Path) -> Callable[..., Path]:
    """Writer of an nb201 + table-latency + predictor config; keyword sections override."""

    def make(name: str = "nb201.yaml", **over: Any) -> Path:
        sections: dict[str, Any] = {
            "seed": 3,
            "search_space": {"type": "nb201"},
            "controller": {"type": "evolution", "population": 20, "sample_size": 5},
            "evaluator": {"type": "predictor"},
            "objective": {"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms"},
            "trainer": {"type": "simple", "steps": 8, "rollouts_per_step": 5, "checkpoint_every": 2},
        }
        sections.update(over)
        return write_config(tmp_path / name, **sections)

    return make


def fake_store(path: Path, space: SearchSpace, device: str = "fake-cpu", backend: str = "torch") -> Path:
    """A cost store whose primitive latency is proportional to its MACs (deterministic)."""
    from hwnas.store import Device, Measurement, Store

    with Store(path) as st:
        dev = st.add_device(Device(name=device, kind="cpu", cpu_model="fake", cores=2, threads=1))
        items = []
        for p in space.primitives():
            st.add_primitive(p)
            ho, wo = p.out_hw
            macs = p.c_in * p.c_out * p.kernel * p.kernel * ho * wo * max(1, p.expansion) / p.groups
            items.append(Measurement("primitive", p.key, backend, {"batch": 1, "threads": 1},
                                     samples_ms=(0.01 + macs / 2e7,)))
        st.add_measurements(dev, items)
    return path
