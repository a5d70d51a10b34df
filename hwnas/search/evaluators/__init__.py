"""Evaluators: perfs for rollouts, possibly training shared weights.

Importing the package registers every built-in evaluator; the role's contract is in
:mod:`hwnas.search.evaluators.base`.
"""
from __future__ import annotations

from hwnas.search.evaluators import mepa, ofa_ps, predictor, table, tune  # noqa: F401  (register)
from hwnas.search.evaluators.base import Evaluator

__all__ = ["Evaluator"]
