"""Hardware objective: latency or energy of each rollout, without running it.

Three sources, one per use: a fitted cost model folder (``model``), the naive sum of
a profiled per-primitive lookup table in a cost store (``store`` + ``device`` +
``backend``), or a whole-network table keyed by the space's architecture string
(``table`` + ``column``, e.g. the published NAS-Bench-201 latencies). Each may be a
shipped asset, ``asset:NAME`` (``hwnas assets ls``), so a search runs on a fresh
install with no profiling. Values are
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
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from hwnas import assets
from hwnas.config import opt
from hwnas.errors import ConfigError, CostModelError, HwnasError
from hwnas.registry import register
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace

log = logging.getLogger(__name__)

#: Reward of a budget violator before subtracting its relative excess.
WORST = -1e6
PERF_NAMES: dict[str, str] = {"latency": "latency_ms", "energy": "energy_mj"}


def read_table(path: Path, column: str, key: str) -> dict[str, float]:
    """``key`` column -> ``column`` values of a CSV (optionally .gz) file."""
    from hwnas.inputs import numeric_column, read_csv

    df = read_csv(path, f"objective.table (a CSV with columns {key!r} and {column!r})")
    for c in (key, column):
        if c not in df.columns:
            raise ConfigError(f"objective.column: {path} has no column {c!r}; columns: {', '.join(map(str, df.columns))}")
    values, missing = numeric_column(df, column, path)
    if missing:
        log.warning("%s: %d row(s) without a %s value; those architectures cannot be evaluated", path, missing, column)
    keys = df.loc[values.index, key].astype(str)
    table: dict[str, float] = {}
    for i, k, v in zip(values.index, keys, values.to_numpy(dtype=float)):
        if k in table and table[k] != v:
            raise ConfigError(f"{path}:{int(i) + 2}: architecture {k[:80]!r} appears twice with different {column}")
        table[k] = float(v)
    return table


@register("objective", "hardware")
class HardwareObjective(Objective):
    """Latency or energy from a cost model, a store's primitive table or a whole-network table."""

    @dataclass(frozen=True)
    class Options:
        metric: Literal["latency", "energy"] = opt("latency", help="perf to predict: latency (ms) or energy (mJ)")
        model: Path | None = opt(None, help="fitted cost model folder (hwnas fit-cost output) or asset:NAME")
        store: Path | None = opt(None, help="cost store (or asset:NAME): naive sum of per-primitive measurements")
        device: str = opt("", help="device id, fingerprint or name in the store")
        backend: str = opt("", help="backend of the store measurements, e.g. onnxruntime")
        table: Path | None = opt(None, help="CSV of whole networks keyed by the space's architecture string, "
                                            "or asset:NAME")
        column: str = opt("", help="column of `table` holding the value, e.g. gold_6226_ms")
        key: str = opt("arch_str", help="column of `table` holding the architecture string")
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
            if self.table is not None and not self.column:
                raise ConfigError("column: a table source needs the value column, e.g. gold_6226_ms")
            if self.mode != "report" and self.budget <= 0:
                raise ConfigError(f"budget: mode {self.mode} needs a budget > 0")
            for name, kind in (("model", "cost_model"), ("store", "store"), ("table", "table")):
                ref = getattr(self, name)
                if ref is not None and assets.is_ref(ref):
                    try:
                        assets.check_ref(str(ref), kind)
                    except HwnasError as exc:
                        raise ConfigError(f"{name}: {exc}") from None

    def __init__(self, options: Any, *, space: SearchSpace, runtime: Any = None, **_: Any) -> None:
        self.options = options
        self.space = space
        self.runtime = runtime
        self.perf_name = PERF_NAMES[options.metric]
        self.perf_names = (self.perf_name,)
        self._cache: dict[Arch, float] = {}
        self._predict: Callable[[list[Arch]], np.ndarray] | None = None

    # -- sources ------------------------------------------------------------------------
    def _build_predict(self) -> Callable[[list[Arch]], np.ndarray]:
        o = self.options
        if o.table is not None:
            table = read_table(assets.resolve(o.table, "table"), o.column, o.key)

            def from_table(archs: list[Arch]) -> np.ndarray:
                out = np.empty(len(archs))
                for i, a in enumerate(archs):
                    s = self.space.to_str(a)
                    if s not in table:
                        raise CostModelError(f"objective.table: {o.table} has no row for {s!r}")
                    out[i] = table[s]
                return out
            return from_table
        if o.store is not None:
            return self._store_predict()
        try:
            from hwnas.cost_models import load_model
        except ImportError as exc:
            raise ConfigError(f"objective.model: cost models are not available in this install ({exc})") from None
        model = load_model(o.model)
        self._check_space(model, o.model)
        if self.runtime is not None and callable(getattr(model, "to", None)):
            model.to(self.runtime.device)  # torch cost models predict where the search runs

        def from_model(archs: list[Arch]) -> np.ndarray:
            return np.asarray(model.predict([self.space.to_network(a) for a in archs]), dtype=float).reshape(-1)
        return from_model

    def _check_space(self, model: Any, where: Any) -> None:
        """A model fit on another space's networks predicts nonsense for this one: refuse it."""
        training = (getattr(model, "manifest_", None) or {}).get("training") or {}
        fit_space, mine = training.get("space"), getattr(self.space, "registry_name", None)
        if fit_space and mine and fit_space != mine:
            raise ConfigError(f"objective.model: {where} was fit on {fit_space!r} networks, the search space is "
                              f"{mine!r}")

    def _store_predict(self) -> Callable[[list[Arch]], np.ndarray]:
        from hwnas.store import Store

        o = self.options
        if not assets.is_ref(o.store) and not Path(o.store).is_file():  # type: ignore[arg-type]
            raise ConfigError(f"objective.store: cost store not found: {o.store}")
        with Store(o.store, readonly=True) as st:  # type: ignore[arg-type]
            dev = st.find_device(o.device)
            prim = st.table(dev["id"], o.backend, metric="latency_ms" if o.metric == "latency" else "energy_mj")
        if not prim:
            raise ConfigError(f"objective.store: {o.store} has no {o.metric} measurements of primitives for "
                              f"device {o.device!r} / backend {o.backend!r}")

        from hwnas.cost_models.lut import LUTModel

        lut = LUTModel().fit([], None, prim)  # the naive sum is the lut cost model, nothing else

        def from_store(archs: list[Arch]) -> np.ndarray:
            try:
                return lut.predict([self.space.to_network(a) for a in archs])
            except CostModelError as exc:
                raise CostModelError(f"objective.store: {exc} (device {o.device!r} / {o.backend!r}; "
                                     "profile the space first)") from None
        return from_store

    def values(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted values for architectures, computed once per distinct arch."""
        if self._predict is None:
            self._predict = self._build_predict()
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
