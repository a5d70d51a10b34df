"""The suites catch broken components: each test registers a component with one known
defect and expects the matching contract rule to fail (a suite that passes everything
would prove nothing)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pytest

from hwnas import registry
from hwnas.cost_models.base import CostModel, check_xy
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.ingest.results import ResultsCsvFormat
from hwnas.search.controllers.simple import RandomController
from hwnas.search.datasets.builtin import SyntheticDataset
from hwnas.testing import suites
from hwnas.testing.examples import lookup
from hwnas.testing.fakes import FakeBackend, ToySpace


@pytest.fixture
def broken() -> Any:
    """Register ``cls`` as ``_broken`` of a role for one test."""
    done: list[str] = []

    def reg(role: str, cls: Any) -> str:
        registry.register(role, "_broken")(cls)
        done.append(role)
        return "_broken"

    yield reg
    for role in done:
        registry.unregister(role, "_broken")


def fails(role: str, name: str, tmp_path: Path, rule: str) -> None:
    with pytest.raises(suites.ContractError, match=rule):
        suites.check(role, name, tmp_path)


def example_of(role: str) -> Callable[..., dict[str, Any]]:
    return classmethod(lambda cls, tmp_dir: {role: {"type": "_broken"}})  # type: ignore[return-value]


def test_controller_that_forgets_its_random_state(broken: Any, tmp_path: Path) -> None:
    class Forgetful(RandomController):
        example = example_of("controller")

        def load_state_dict(self, state: Mapping[str, Any]) -> None:
            pass

    fails("controller", broken("controller", Forgetful), tmp_path, "restored from state_dict")


def test_controller_proposing_invalid_archs(broken: Any, tmp_path: Path) -> None:
    class OutOfRange(RandomController):
        example = example_of("controller")

        def sample(self, n: int = 1) -> list:
            return [type(r)(tuple(a + 10 for a in r.arch)) for r in super().sample(n)]

    fails("controller", broken("controller", OutOfRange), tmp_path, "arch the space refuses")


class MeanModel(CostModel):
    """Predicts the training mean: learns from y, beats nothing."""

    def __init__(self) -> None:
        pass

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Any = None) -> "MeanModel":
        from hwnas.cost_models.features import NodeFeatures, ops_of

        self.nodes_ = NodeFeatures(ops_of(networks), None)
        self.mean_ = float(np.mean(check_xy(networks, y)))
        return self

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        self._check_fitted()
        return np.full(len(networks), self.mean_)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "mean": self.mean_}

    def restore(self, state: Mapping[str, Any], tensors: Any) -> None:
        super().restore(state, tensors)
        self.mean_ = float(state["mean"])


def test_cost_model_that_does_not_beat_the_mean(broken: Any, tmp_path: Path) -> None:
    fails("cost_model", broken("cost_model", MeanModel), tmp_path, "does not beat predicting the training mean")


def test_cost_model_that_loses_its_state_when_saved(broken: Any, tmp_path: Path) -> None:
    from hwnas.cost_models.linear import Linear2Model

    class Lossy(Linear2Model):
        def restore(self, state: Mapping[str, Any], tensors: Any) -> None:
            super().restore(state, tensors)
            self.coef_ = np.round(self.coef_, 2)

    fails("cost_model", broken("cost_model", Lossy), tmp_path, "change after save/load")


def test_backend_named_unlike_its_registry_name(broken: Any, tmp_path: Path) -> None:
    class Misnamed(FakeBackend):
        pass

    fails("backend", broken("backend", Misnamed), tmp_path, "must equal the registry name")


def test_ingest_format_without_an_example(broken: Any, tmp_path: Path) -> None:
    class NoExample(ResultsCsvFormat):
        example = ResultsCsvFormat.__mro__[2].example  # LatencyFormat's: not implemented

    fails("ingest_format", broken("ingest_format", NoExample), tmp_path, "does not implement example")


def test_dataset_with_labels_out_of_range(broken: Any, tmp_path: Path) -> None:
    class Shifted(SyntheticDataset):
        @classmethod
        def example(cls, tmp_dir: Path) -> dict[str, Any]:
            return {"dataset": {**lookup("dataset", "synthetic")(tmp_dir)["dataset"], "type": "_broken"}}

        def load_arrays(self) -> Any:
            x, y, sx, sy, n = super().load_arrays()
            return x, y + 1, sx, sy, n

    fails("dataset", broken("dataset", Shifted), tmp_path, "labels must lie in")


def test_space_whose_networks_leave_its_primitives(broken: Any, tmp_path: Path) -> None:
    class Leaky(ToySpace):
        example = example_of("search_space")

        def to_network(self, arch: Any) -> NetworkSpec:
            net = super().to_network(arch)
            extra = Primitive("fc", net.nodes[-1].c_out, 3, 1, 1)
            return NetworkSpec.chain(net.input_shape, [*net.nodes, extra], space="leaky")

    fails("search_space", broken("search_space", Leaky), tmp_path, "nodes not in primitives")
