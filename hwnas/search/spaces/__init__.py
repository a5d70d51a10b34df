"""Search spaces: what can vary, and how an architecture becomes a NetworkSpec."""
from __future__ import annotations

from hwnas.search.spaces import darts, fbnet, mbv2, mbv3, nb201  # noqa: F401  (register)
from hwnas.search.spaces.base import Arch, Decision, SearchSpace

__all__ = ["Arch", "Decision", "SearchSpace"]
