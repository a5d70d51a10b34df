"""Search spaces: what can vary, and how an architecture becomes a NetworkSpec."""
from __future__ import annotations

from hwnas.search.spaces import darts, dense_cell, fbnet, mbv2, mbv3, nb101, nb201, rnn_cell  # noqa: F401  (register)
from hwnas.search.spaces.base import Arch, Decision, SearchSpace

__all__ = ["Arch", "Decision", "SearchSpace"]
