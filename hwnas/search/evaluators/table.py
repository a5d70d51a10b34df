"""The ``table`` evaluator: perfs looked up in a benchmark table instead of measured.

Tabular benchmarks (NAS-Bench-201 gives the trained accuracy of every cell) let any
controller be compared on real numbers in seconds, which is how NAS methods are
compared in the literature. The table is a CSV (optionally gzip) keyed by the space's
architecture string (``space.to_str``) or, for graph spaces whose benchmark files are
keyed by a graph hash (NAS-Bench-101's module hash), by ``space.arch_hash``; ``perfs``
maps perf names to its columns, so the same file serves accuracy, latency on several
devices, or one-shot estimates.

The evaluator counts every *distinct* architecture it looks up (``queries``): that is
the budget benchmark papers report ("queries to the optimum"), and it survives a
resume through the state dict. Objectives that measure something else (a ``hardware``
child reading a latency table or a cost model, a zero-cost proxy) are asked for their
perfs after the lookup, so composite and Pareto objectives work unchanged; children
whose perfs the table provides (``classification``: accuracy) are not asked, their
reward simply reads the table's value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError, HwnasError
from hwnas.registry import register
from hwnas.search.evaluators.base import Evaluator
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import SearchSpace


def read_columns(path: Path, key: str, columns: Mapping[str, str], what: str = "evaluator") -> dict[str, tuple]:
    """``key`` value -> tuple of the ``columns`` values (in mapping order) of a CSV file.

    Every error is one line naming the file (and the CSV line for a bad value); a key
    listed twice with different values is refused (which row would be the truth?).
    """
    import pandas as pd

    from hwnas.inputs import read_csv, short

    df = read_csv(path, f"{what}.table (a CSV with a {key!r} column)")
    have = short(", ".join(map(str, df.columns)), 200)
    if key not in df.columns:
        raise ConfigError(f"{what}.key: {path} has no key column {key!r}; columns: {have}")
    cols = []
    for perf, col in columns.items():
        if col not in df.columns:
            raise ConfigError(f"{what}.perfs.{perf}: {path} has no column {col!r}; columns: {have}")
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() & df[col].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ConfigError(f"{path}:{i + 2}: column {col!r}: expected a number, got {short(df[col].iloc[i])}")
        cols.append(vals.to_numpy(dtype=float))
    table: dict[str, tuple] = {}
    for i, (k, row) in enumerate(zip(df[key].astype(str), zip(*cols))):
        old = table.setdefault(k, row)
        if old != row and not all(a != a and b != b for a, b in zip(old, row)):  # NaN == NaN here
            raise ConfigError(f"{path}:{i + 2}: architecture {short(k)} appears twice with different values")
    return table


def measured_elsewhere(objective: Objective, provided: set[str]) -> list[Objective]:
    """The objective (or composite children) that measure perfs the table does not give."""
    children = [c for _, _, c in getattr(objective, "children", [])] or [objective]
    return [c for c in children if not set(c.perf_names) & provided]


@register("evaluator", "table")
class TableEvaluator(Evaluator):
    """Perfs from a benchmark CSV keyed by the architecture string; counts distinct queries."""

    needs_candidates = False

    @dataclass(frozen=True)
    class Options:
        table: Path | None = opt(None, help="CSV (or .csv.gz) with one row per architecture")
        key: str = opt("arch_str", help="column holding the space's architecture string (space.to_str)")
        key_form: str = opt("arch_str", choices=("arch_str", "hash"),
                            help="what the key column holds: the architecture string, or the space's graph "
                                 "hash (space.arch_hash: nb101's is NAS-Bench-101's module hash)")
        perfs: dict[str, str] = opt({"accuracy": "cifar10_test_acc"}, help="perf name -> column of the table")
        scale: dict[str, float] = opt({}, help="perf name -> factor applied to its column (accuracy: 0.01 "
                                               "turns percent into a fraction); default 1")

        def check(self) -> None:
            if self.table is None:
                raise ConfigError("table: the table evaluator needs a CSV file (table: PATH)")
            if not self.perfs:
                raise ConfigError("perfs: map at least one perf name to a column, e.g. {accuracy: cifar10_test_acc}")
            for name, col in self.perfs.items():
                if not isinstance(col, str) or not col:
                    raise ConfigError(f"perfs.{name}: expected a column name, got {col!r}")
            for name, f in self.scale.items():
                if name not in self.perfs:
                    raise ConfigError(f"scale.{name}: not a perf of this table ({', '.join(self.perfs)})")
                if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f):
                    raise ConfigError(f"scale.{name}: expected a finite number, got {f!r}")

    def __init__(self, options: Any, *, space: SearchSpace, objective: Objective, **_: Any) -> None:
        self.options = options
        self.space = space
        self.objective = objective
        self._rows: dict[str, tuple] | None = None
        self._queried: dict[str, None] = {}  # insertion-ordered set of distinct arch strings
        self._others = measured_elsewhere(objective, set(options.perfs))
        if getattr(options, "key_form", "arch_str") == "hash" and not callable(getattr(space, "arch_hash", None)):
            raise ConfigError(f"evaluator.key_form: the {space.name} space has no graph hash; use key_form: arch_str")

    def key_of(self, arch: Any) -> str:
        """The table key of ``arch``: its string, or its graph hash (``key_form: hash``)."""
        if getattr(self.options, "key_form", "arch_str") == "hash":
            return str(self.space.arch_hash(arch))  # type: ignore[attr-defined]
        return self.space.to_str(arch)

    @property
    def queries(self) -> int:
        """Distinct architectures looked up so far (the benchmark budget)."""
        return len(self._queried)

    def lookup(self, arch_str: str) -> dict[str, float]:
        """The table's perfs of one architecture string (counted as a query)."""
        o = self.options
        if self._rows is None:
            self._rows = read_columns(o.table, o.key, o.perfs)  # type: ignore[arg-type]
        row = self._rows.get(arch_str)
        if row is None:
            raise HwnasError(f"evaluator.table: {o.table} has no row for arch {arch_str!r} (key column {o.key!r})")
        out = {}
        for (name, col), v in zip(o.perfs.items(), row):
            if not math.isfinite(v):
                raise HwnasError(f"evaluator.table: {o.table} column {col!r} is empty for arch {arch_str!r}")
            out[name] = float(v) * float(o.scale.get(name, 1.0))
        self._queried.setdefault(arch_str)
        return out

    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        for r in rollouts:
            r.perfs.update(self.lookup(self.key_of(r.arch)))
        for obj in self._others:
            for r, p in zip(rollouts, obj.perfs(rollouts, None)):
                for k, v in p.items():
                    r.perfs.setdefault(k, float(v))
        for r in rollouts:
            r.reward = float(self.objective.reward(r.perfs))

    def summary(self) -> dict[str, Any]:
        return {"queries": self.queries}

    def state_dict(self) -> dict[str, Any]:
        return {"queried": list(self._queried)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._queried = dict.fromkeys(str(s) for s in state.get("queried", []))
