"""The controller role: proposes architectures and learns from how they scored.

Contract (checked for every registered controller by the suite in ``testing/controller.py``):

* built as ``cls(options, space=..., seed=...)``; all randomness comes from ``self.rng``
  (seeded) or from state saved in :meth:`state_dict`, so a controller restored from its
  state dict proposes exactly what the original would have;
* :meth:`sample` returns ``n`` new :class:`Rollout` objects whose ``arch`` is valid in
  the space (``space.validate`` accepts it);
* :meth:`step` receives those rollouts with ``perfs`` and ``reward`` filled and updates
  the controller; it must accept rollouts whose reward is very low (infeasible) and
  must not rely on being called once per :meth:`sample`;
* :meth:`state_dict` is JSON-able apart from torch tensors (it goes through the
  trainer's checkpoint files), and two controllers built with the same seed propose
  the same rollouts;
* a controller that trades perfs off (Pareto) takes the objective's directions through
  an optional ``set_directions(directions)``, as the search builder calls it;
* :meth:`Controller.example` defaults to the controller with default options on the
  ``toy`` space;
* :meth:`ranked` (optional) lists the architectures the controller itself prefers.
"""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.search.component import Component
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace


class Controller(Component):
    """Proposes rollouts and learns from their perfs."""

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0) -> None:
        self.options = options
        self.space = space
        self.rng = np.random.default_rng(seed)

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Default options, on the ``toy`` space the suite adds (see Component.example)."""
        return {"controller": {"type": cls.registry_name}}

    @abstractmethod
    def sample(self, n: int = 1) -> list[Rollout]:
        """``n`` rollouts to evaluate next (fresh objects, ``perfs`` empty)."""

    @abstractmethod
    def step(self, rollouts: Sequence[Rollout]) -> None:
        """Learn from evaluated rollouts (``reward`` / ``perfs`` filled)."""

    def ranked(self, n: int) -> list[tuple[Arch, float]]:
        """The ``n`` architectures this controller prefers, best first, each with its score
        (log-probability for a policy, predicted score for a predictor).

        ``hwnas derive RUN_DIR --from controller`` reads a trained controller through it.
        The default, ``[]``, means the controller cannot rank its own proposals (random
        search, population methods: their best is the history's best).
        """
        return []

    def rng_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state  # JSON-able dict

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = dict(state)
