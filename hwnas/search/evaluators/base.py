"""The evaluator role: fills rollouts' perfs and reward, possibly training shared weights.

Contract (checked by the suite in ``testing/evaluator.py``):

* built with keyword arguments it declares among ``space``, ``objective``,
  ``dataset``, ``weights_manager``, ``seed``, ``base_dir``;
* :meth:`evaluate` fills ``perfs`` (every name of the objective's ``perf_names`` it is
  responsible for) and ``reward`` (a finite float) of every rollout given, in place;
* ``needs_candidates`` says whether rollouts must carry a candidate built by the
  weights manager before :meth:`evaluate`;
* :meth:`update_evaluator` is one round of shared-weight training (a no-op returning
  ``{}`` for evaluators without shared weights) and returns scalar statistics;
* evaluating the same architectures again without an update gives the same perfs, and
  an evaluator restored from :meth:`state_dict` (with its weights manager's state)
  scores and trains exactly like the original (a resumed search depends on it);
* :meth:`Component.example` gives a small run config with its objective and dataset;
* :meth:`summary` returns counters worth keeping in a run's summary (``{}`` by
  default; the ``table`` evaluator reports its distinct ``queries``).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Sequence

from hwnas.search.component import Component
from hwnas.search.rollout import Rollout

if TYPE_CHECKING:
    from hwnas.search.controllers.base import Controller


class Evaluator(Component):
    """Fills perfs (via objectives) for rollouts; may update shared weights."""

    #: Whether rollouts need ``candidate`` networks before :meth:`evaluate`.
    needs_candidates: bool = True
    #: Whether it trains shared weights (needs a supernet weights manager).
    needs_shared_weights: bool = False

    @abstractmethod
    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        """Fill ``perfs`` and ``reward`` of each rollout in place."""

    def update_evaluator(self, controller: Controller | None = None) -> dict[str, float]:
        """One round of training of shared weights (no-op for train-from-scratch)."""
        return {}

    def summary(self) -> dict[str, Any]:
        """JSON-able counters for the run summary (e.g. benchmark queries); none by default."""
        return {}
