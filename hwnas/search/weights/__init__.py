"""Weights managers: fill a rollout with weights (plain, or shared supernets).

Importing the package registers every built-in weights manager; the role's contract is
in :mod:`hwnas.search.weights.base`.
"""
from __future__ import annotations

from hwnas.search.weights import (  # noqa: F401  (register)
    diff_supernet,
    morphism,
    plain,
    rnn_supernet,
    supernet_darts,
    supernet_mbv2,
    supernet_mbv3,
    supernet_nb201,
)
from hwnas.search.weights.base import WeightsManager

__all__ = ["WeightsManager"]
