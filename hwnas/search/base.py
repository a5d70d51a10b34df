"""The search engine's contracts: the rollout and one small base class per role.

One iteration of a search::

    rollouts = controller.sample(n)
    for r in rollouts:
        r.candidate = weights_manager.assemble_candidate(r)
    evaluator.evaluate(rollouts)            # fills r.perfs (task + hardware objectives)
    controller.step(rollouts)               # learns from r.perfs / r.reward

Every component is built from its frozen ``Options`` (hwnas.config) and the few
objects it needs (the search space, an objective, a dataset), never from global state.
Components that learn hold state that survives a restart via ``state_dict`` /
``load_state_dict`` (JSON-able dicts, or tensors for torch state).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hwnas.search.spaces.base import Arch, SearchSpace


@dataclass
class Rollout:
    """An architecture and what has been measured or predicted about it.

    ``perfs`` maps perf names (``accuracy``, ``latency_ms``, ``energy_mj``, ``loss``,
    ...) to floats; ``reward`` is the scalar a single-objective controller maximises
    (set by the objective). ``candidate`` is the runnable filled by the weights manager
    (not persisted).
    """

    arch: Arch
    perfs: dict[str, float] = field(default_factory=dict)
    reward: float | None = None
    step: int = -1
    candidate: Any = field(default=None, repr=False, compare=False)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, space: SearchSpace | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"arch": list(self.arch), "perfs": dict(self.perfs), "reward": self.reward,
                             "step": self.step}
        if space is not None:
            d["arch_str"] = space.to_str(self.arch)
        if self.info:
            d["info"] = dict(self.info)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Rollout":
        return cls(tuple(int(a) for a in d["arch"]), {k: float(v) for k, v in d.get("perfs", {}).items()},
                   d.get("reward"), int(d.get("step", -1)), None, dict(d.get("info", {})))


class Component:
    """Base of every role: holds validated options; optional persistent state."""

    Options: type | None = None
    registry_name: str = "component"

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state to load")


class Dataset(Component):
    """Batches of real data: train / valid / test splits as torch DataLoaders."""

    num_classes: int
    in_channels: int
    resolution: int

    def loader(self, split: str, *, batch_size: int, shuffle: bool, seed: int = 0) -> Any:
        raise NotImplementedError


class Controller(Component):
    """Proposes rollouts and learns from their perfs."""

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0) -> None:
        self.options = options
        self.space = space
        self.rng = np.random.default_rng(seed)

    def sample(self, n: int = 1) -> list[Rollout]:
        raise NotImplementedError

    def step(self, rollouts: Sequence[Rollout]) -> None:
        """Learn from evaluated rollouts (reward / perfs filled)."""

    def rng_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state  # JSON-able dict

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = dict(state)


class WeightsManager(Component):
    """Fills a rollout with weights: a runnable candidate network."""

    def assemble_candidate(self, rollout: Rollout) -> Any:
        raise NotImplementedError


class Objective(Component):
    """Perfs and reward for rollouts whose candidates exist (or need none: hardware)."""

    #: Names of the perfs this objective fills.
    perf_names: tuple[str, ...] = ()

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        raise NotImplementedError

    def reward(self, perfs: Mapping[str, float]) -> float:
        raise NotImplementedError

    def directions(self) -> dict[str, str]:
        """Perf name -> 'max' or 'min' (used by Pareto controllers and reports)."""
        return {}


class Evaluator(Component):
    """Fills perfs (via objectives) for rollouts; may update shared weights."""

    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        raise NotImplementedError

    def update_evaluator(self, controller: Controller | None = None) -> dict[str, float]:
        """One round of training of shared weights (no-op for train-from-scratch)."""
        return {}


class Trainer(Component):
    """The loop: sample -> assemble -> evaluate -> step, with checkpoints."""

    def run(self) -> Any:
        raise NotImplementedError


def batched(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
