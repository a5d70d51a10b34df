"""The trainer role: the search loop that joins the other roles.

Contract (checked by the suite in ``testing/trainer.py``):

* built as ``cls(options, components=..., run_dir=..., seed=...)``;
* :meth:`run` repeats ``controller.sample`` -> ``weights_manager.assemble_candidate``
  (when the evaluator needs candidates) -> ``evaluator.evaluate`` ->
  ``controller.step`` until its budget is spent and returns a summary with at least
  ``steps``, ``rollouts``, ``best`` and ``pareto``;
* with a run directory it checkpoints, and a run started again in the same directory
  continues where the last one stopped with the history it would have had unbroken;
* its options include ``steps`` (the budget ``--steps`` overrides); the suite runs the
  :meth:`Component.example` config for ``steps`` at once and in two halves.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

from hwnas.search.component import Component


class Trainer(Component):
    """The loop: sample -> assemble -> evaluate -> step, with checkpoints."""

    #: Whether the run's config must have an evaluator section (a differentiable
    #: search trains and scores its supernet itself).
    needs_evaluator: bool = True

    @abstractmethod
    def run(self) -> dict[str, Any]:
        """Run (or continue) the search; returns its summary."""
