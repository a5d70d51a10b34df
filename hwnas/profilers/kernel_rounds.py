"""The kernel job's stopping rule and the advice before each round (records only).

Why apart from the job: the advice is made above the profilers (a cost-model decision:
``hwnas.cost_models.kernel_fit.advise_round`` returns it as a plain mapping, since cost
models never import profilers); these records say what the job reads from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from hwnas.errors import ConfigError


@dataclass(frozen=True)
class StopRule:
    """When a block family counts as accurate: its networks' held-out error (MAPE of the
    predicted vs measured kernel sum, out-of-fold) is at most ``mape``, judged on at least
    ``min_networks`` held-out networks that contain it. ``mape`` 0 never stops a family."""

    mape: float = 0.04
    min_networks: int = 20

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.mape) < float("inf"):
            raise ConfigError(f"stop mape: expected a finite share >= 0 (0.04 is 4%), got {self.mape!r}")
        if isinstance(self.min_networks, bool) or not isinstance(self.min_networks, int) or self.min_networks < 2:
            raise ConfigError(f"stop min_networks: expected an integer >= 2, got {self.min_networks!r}")


@dataclass(frozen=True)
class RoundAdvice:
    """What the advisor says before a round: block-family weights (0: accurate, no longer
    drawn) and, per judged family, ``{"networks", "mape", "accurate"}``."""

    weights: dict[str, float]
    families: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, value: Mapping[str, Any] | None) -> "RoundAdvice":
        """From the advisor's plain mapping; a flat ``{family: weight}`` judges nothing."""
        value = dict(value or {})
        if "weights" in value or "families" in value:
            return cls({str(k): float(v) for k, v in dict(value.get("weights") or {}).items()},
                       {str(k): dict(v) for k, v in dict(value.get("families") or {}).items()})
        return cls({str(k): float(v) for k, v in value.items()}, {})

    def all_accurate(self, drawn: list[str]) -> bool:
        """Every family that would be drawn was judged accurate (nothing left to learn)."""
        return bool(drawn) and all(bool(self.families.get(b, {}).get("accurate")) for b in drawn)
