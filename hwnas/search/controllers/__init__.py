"""Controllers: propose rollouts, learn from their perfs."""
from __future__ import annotations

from hwnas.search.controllers import annealing, differentiable, gumbel, pareto, predictor, rl, simple  # noqa: F401  (register)

__all__ = ["annealing", "differentiable", "gumbel", "pareto", "predictor", "rl", "simple"]
