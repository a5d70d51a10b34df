"""The objective role: what is measured about an architecture, and the reward.

Contract (checked by the suite in ``testing/objective.py``):

* built with keyword arguments it declares among ``space``, ``dataset``, ``seed``,
  ``base_dir``;
* :meth:`perfs` returns one mapping per rollout holding exactly the names in
  ``perf_names`` (finite floats); objectives that need a network read it from
  ``candidates`` (or the rollout's ``candidate``), hardware objectives need none;
* :meth:`reward` turns a perfs mapping into the scalar a controller maximises;
* :meth:`directions` names, for each perf, whether it is maximised or minimised
  (Pareto controllers and reports read it);
* asked twice about the same candidates it gives the same perfs;
  :meth:`Component.example` gives a small run config (space, dataset) it scores.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Mapping, Sequence

from hwnas.search.component import Component
from hwnas.search.rollout import Rollout


class Objective(Component):
    """Perfs and reward for rollouts whose candidates exist (or need none: hardware)."""

    #: Names of the perfs this objective fills.
    perf_names: tuple[str, ...] = ()

    @abstractmethod
    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        """One perfs mapping per rollout."""

    @abstractmethod
    def reward(self, perfs: Mapping[str, float]) -> float:
        """The scalar a single-objective controller maximises."""

    def directions(self) -> dict[str, str]:
        """Perf name -> 'max' or 'min' (used by Pareto controllers and reports)."""
        return {}
