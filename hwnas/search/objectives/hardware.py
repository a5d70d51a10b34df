"""Hardware objective: latency or energy of each rollout, without running it.

Every value comes from one read-only :class:`~hwnas.cost_models.source.CostSource`,
built from one of three options: a fitted cost model folder (``model``), the naive sum of
a profiled per-primitive lookup table in a cost store (``store`` + ``device`` +
``backend``; the ``estimator`` column, by default the robust ``latency_ms``), or a
whole-network table keyed by the space's architecture string (``table`` + ``column``,
e.g. the published NAS-Bench-201 latencies). Each may be a shipped asset, ``asset:NAME``
(``hwnas assets ls``), so a search runs on a fresh install with no profiling. A source
that holds another metric than ``metric`` (a latency model asked for energy) is refused
in one line naming it. Values are
cached per architecture and computed batch-wise (one ``predict`` call per batch), so
a predictor-only search runs thousands of rollouts per second.

Modes: ``report`` (reward = -value), ``constraint`` (the task reward, but every
violator scores below every feasible rollout, ordered by how far over the budget it
is, so a search is still pulled back towards feasibility), ``penalty`` (MnasNet:
reward = accuracy * (value / budget) ** weight).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError, CostModelError
from hwnas.registry import register
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace

if TYPE_CHECKING:
    from hwnas.cost_models.source import CostSource

log = logging.getLogger(__name__)

#: Reward of a budget violator before subtracting its relative excess.
WORST = -1e6
PERF_NAMES: dict[str, str] = {"latency": "latency_ms", "energy": "energy_mj"}


@register("objective", "hardware")
class HardwareObjective(Objective):
    """Latency or energy from a cost model, a store's primitive table or a whole-network table."""

    @dataclass(frozen=True)
    class Options:
        metric: Literal["latency", "energy"] = opt("latency", help="perf to predict: latency (ms) or energy (mJ)")
        model: Path | None = opt(None, asset="cost_model",
                                 help="fitted cost model folder (hwnas fit-cost output) or asset:NAME")
        store: Path | None = opt(None, asset="store",
                                 help="cost store (or asset:NAME): naive sum of per-primitive measurements")
        device: str = opt("", help="device id, fingerprint or name in the store")
        backend: str = opt("", help="backend of the store measurements, e.g. onnxruntime")
        table: Path | None = opt(None, asset="table", help="CSV of whole networks keyed by the space's architecture string, "
                                            "or asset:NAME")
        column: str = opt("", help="column of `table` holding the value, e.g. gold_6226_ms")
        key: str = opt("arch_str", help="column of `table` holding the architecture string")
        estimator: str = opt("", help="store column: latency_ms (default: the robust estimate), median_ms, mean_ms; "
                                      "energy_mj for energy")
        mode: Literal["report", "constraint", "penalty"] = opt(
            "report", help="report: reward -value; constraint: budget, violators worst; penalty: acc*(v/budget)^weight")
        budget: float = opt(0.0, min=0.0, help="budget (constraint) or target (penalty), in ms or mJ")
        weight: float = opt(-0.07, help="penalty exponent (MnasNet uses -0.07)")

        def check(self) -> None:
            sources = [n for n in ("model", "store", "table") if getattr(self, n) is not None]
            if len(sources) != 1:
                raise ConfigError("model: give exactly one source: model (cost model folder), store (+ device, backend)"
                                  f" or table (+ column); got {', '.join(sources) or 'none'}")
            if self.store is not None and not (self.device and self.backend):
                raise ConfigError("device: a store source needs device and backend")
            if self.estimator and self.store is None:
                raise ConfigError("estimator: chooses a store's column; a model or table has its own estimate")
            if self.table is not None and not self.column:
                raise ConfigError("column: a table source needs the value column, e.g. gold_6226_ms")
            if self.mode != "report" and self.budget <= 0:
                raise ConfigError(f"budget: mode {self.mode} needs a budget > 0")

    def __init__(self, options: Any, *, space: SearchSpace, runtime: Any = None, **_: Any) -> None:
        self.options = options
        self.space = space
        self.runtime = runtime
        self.perf_name = PERF_NAMES[options.metric]
        self.perf_names = (self.perf_name,)
        self._cache: dict[Arch, float] = {}
        self._source: CostSource | None = None

    # -- the cost source --------------------------------------------------------------------
    def source(self) -> CostSource:
        """The one read-only cost source of this objective (built once, on first use): it
        must hold the metric asked for and be made for this space."""
        if self._source is None:
            try:
                from hwnas.cost_models.source import SourceRequest, open_source
            except ImportError as exc:
                raise ConfigError(f"objective.model: cost models are not available in this install ({exc})") from None
            src = open_source(SourceRequest.of(self.options))
            try:
                src.check_space(self.space)
            except ConfigError as exc:
                raise ConfigError(f"objective.{exc}") from None
            if self.runtime is not None and callable(getattr(src, "to", None)):
                src.to(self.runtime.device)  # type: ignore[attr-defined]  # torch models predict where the search runs
            self._source = src
        return self._source

    def _predict(self, archs: list[Arch]) -> np.ndarray:
        src = self.source()
        try:
            return src.cost_archs(self.space, archs)
        except CostModelError as exc:
            name = next(n for n in ("table", "store", "model") if getattr(self.options, n) is not None)
            raise CostModelError(f"objective.{name}: {exc}") from None

    def values(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted values for architectures, computed once per distinct arch."""
        keys = [tuple(a) for a in archs]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            for k, v in zip(todo, self._predict(todo)):
                self._cache[k] = float(v)
        return np.fromiter((self._cache[k] for k in keys), dtype=float, count=len(keys))

    # -- Objective ------------------------------------------------------------------------
    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        vals = self.values([r.arch for r in rollouts])
        return [{self.perf_name: float(v)} for v in vals]

    def cheap_perfs(self, rollouts: Sequence[Rollout]) -> list[dict[str, float]]:
        """Perfs computable without a trained candidate (all of them, here)."""
        return self.perfs(rollouts)

    @property
    def is_modifier(self) -> bool:
        """Constraint and penalty modes modify a task reward instead of adding to it."""
        return self.options.mode != "report"

    def feasible(self, perfs: Mapping[str, float]) -> bool:
        o = self.options
        return o.mode != "constraint" or float(perfs[self.perf_name]) <= o.budget

    def apply(self, base: float, perfs: Mapping[str, float]) -> float:
        """Turn a task reward into the constrained / penalised reward."""
        o = self.options
        v = float(perfs[self.perf_name])
        if o.mode == "constraint":
            return base if v <= o.budget else WORST - (v / o.budget - 1.0)
        if o.mode == "penalty":
            return base * (v / o.budget) ** o.weight
        return base

    def reward(self, perfs: Mapping[str, float]) -> float:
        v = float(perfs[self.perf_name])
        if self.options.mode == "report":
            return -v
        base = float(perfs["accuracy"]) if "accuracy" in perfs else (-v if self.options.mode == "constraint" else 1.0)
        return self.apply(base, perfs)

    def directions(self) -> dict[str, str]:
        return {self.perf_name: "min"}


def read_table(path: Path, column: str, key: str) -> dict[str, float]:
    """``key`` -> ``column`` of a whole-network CSV (see :mod:`hwnas.cost_models.source_tables`)."""
    from hwnas.cost_models.source_tables import read_table as read

    return read(path, column, key)
