"""Controllers: propose rollouts, learn from their perfs."""
from __future__ import annotations

from hwnas.search.controllers import (  # noqa: F401  (register)
    annealing,
    differentiable,
    gumbel,
    morphism_evolution,
    pareto,
    predictor,
    rl,
    simple,
)

__all__ = ["annealing", "differentiable", "gumbel", "morphism_evolution", "pareto", "predictor", "rl", "simple"]
