"""NSGA-II over any perfs: non-dominated sorting plus crowding distance (Deb et al., 2002).

The controller keeps a population ranked by Pareto front and, inside a front, by
crowding distance (bigger = lonelier = kept), so it spreads along the whole trade-off
curve (e.g. accuracy vs latency) instead of collapsing on one weighted optimum. The
helpers are public because reports compute the final Pareto set the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace


def parse_directions(items: Sequence[str]) -> dict[str, str]:
    """``["accuracy:max", "latency_ms:min"]`` -> ``{"accuracy": "max", "latency_ms": "min"}``."""
    out = {}
    for it in items:
        name, _, d = str(it).partition(":")
        d = d or "max"
        if d not in ("max", "min") or not name:
            raise ConfigError(f"perfs: expected NAME:max or NAME:min, got {it!r}")
        out[name] = d
    return out


def oriented(perfs: Sequence[Mapping[str, float]], directions: Mapping[str, str]) -> np.ndarray:
    """N x M matrix where bigger is better in every column (min perfs are negated)."""
    names = list(directions)
    F = np.array([[float(p.get(n, np.nan)) for n in names] for p in perfs], dtype=np.float64).reshape(len(perfs),
                                                                                                        len(names))
    sign = np.array([1.0 if directions[n] == "max" else -1.0 for n in names])
    F = F * sign
    return np.where(np.isnan(F), -np.inf, F)


def non_dominated_sort(F: np.ndarray) -> list[np.ndarray]:
    """Fronts (arrays of row indices) of a maximisation matrix, best front first."""
    n = len(F)
    if n == 0:
        return []
    ge = (F[:, None, :] >= F[None, :, :]).all(-1)
    gt = (F[:, None, :] > F[None, :, :]).any(-1)
    dom = ge & gt  # dom[i, j]: i dominates j
    counts = dom.sum(0)
    remaining = np.ones(n, dtype=bool)
    fronts = []
    while remaining.any():
        front = np.flatnonzero(remaining & (counts == 0))
        fronts.append(front)
        remaining[front] = False
        counts = counts - dom[front].sum(0)
    return fronts


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """Crowding distance of the rows of one front (boundary points get +inf)."""
    n, m = F.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        col = F[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0 and np.isfinite(span):
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def hypervolume_2d(F: np.ndarray, ref: Sequence[float]) -> float:
    """Exact area dominated by the rows of a two-column maximisation matrix and bounded
    below by ``ref`` (rows not better than ``ref`` in both columns add nothing)."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, 2)
    F = F[(F[:, 0] > ref[0]) & (F[:, 1] > ref[1])]
    if not len(F):
        return 0.0
    F = F[np.lexsort((-F[:, 1], -F[:, 0]))]  # first column descending, ties: best second first
    area, best_y = 0.0, float(ref[1])
    for x, y in F:
        if y > best_y:
            area += (x - ref[0]) * (y - best_y)
            best_y = float(y)
    return float(area)


def pareto_indices(perfs: Sequence[Mapping[str, float]], directions: Mapping[str, str]) -> list[int]:
    """Indices of the non-dominated rows."""
    if not perfs:
        return []
    return [int(i) for i in non_dominated_sort(oriented(perfs, directions))[0]]


@register("controller", "pareto")
class ParetoController(Controller):
    """NSGA-II: binary tournaments on (front, crowding), crossover, mutation, elitist survival."""

    @dataclass(frozen=True)
    class Options:
        population: int = opt(40, min=2, help="survivors kept after each step")
        perfs: list[str] = opt([], help="perfs to trade off as NAME:max|min; empty = the objective's directions")
        crossover: float = opt(0.9, min=0.0, max=1.0, help="probability of uniform crossover of two parents")
        mutations: int = opt(1, min=1, help="decisions changed per mutation")

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(options, space=space, seed=seed)
        self.directions: dict[str, str] = parse_directions(options.perfs)
        self.members: list[tuple[Arch, dict[str, float]]] = []
        self._rank = np.zeros(0)
        self._crowd = np.zeros(0)

    def set_directions(self, directions: Mapping[str, str]) -> None:
        """Called by the search builder with the objective's directions when ``perfs`` is empty."""
        if not self.directions:
            self.directions = dict(directions)

    def _better(self, i: int, j: int) -> int:
        if self._rank[i] != self._rank[j]:
            return i if self._rank[i] < self._rank[j] else j
        return i if self._crowd[i] >= self._crowd[j] else j

    def _parent(self) -> Arch:
        i, j = (int(x) for x in self.rng.integers(len(self.members), size=2))
        return self.members[self._better(i, j)][0]

    def sample(self, n: int = 1) -> list[Rollout]:
        out = []
        for _ in range(n):
            if len(self.members) < self.options.population:
                arch = self.space.sample(self.rng)
            else:
                arch = self._parent()
                if self.rng.random() < self.options.crossover:
                    arch = self.space.crossover(arch, self._parent(), self.rng)
                arch = self.space.mutate(arch, self.rng, self.options.mutations)
            out.append(Rollout(arch))
        return out

    def _select(self) -> None:
        """Keep the best ``population`` members by front, then crowding; cache ranks."""
        if not self.directions:
            raise ConfigError("controller.perfs: the pareto controller needs perfs to trade off "
                              "(set perfs, or use an objective that declares directions)")
        F = oriented([p for _, p in self.members], self.directions)
        keep: list[int] = []
        for front in non_dominated_sort(F):
            if len(keep) + len(front) <= self.options.population:
                keep.extend(int(i) for i in front)
            else:
                cd = crowding_distance(F[front])
                order = np.argsort(-cd, kind="stable")
                keep.extend(int(front[i]) for i in order[:self.options.population - len(keep)])
                break
        self.members = [self.members[i] for i in keep]
        F = F[keep]
        self._rank = np.zeros(len(F))
        self._crowd = np.zeros(len(F))
        for r, front in enumerate(non_dominated_sort(F)):
            self._rank[front] = r
            self._crowd[front] = crowding_distance(F[front])

    def step(self, rollouts: Sequence[Rollout]) -> None:
        seen = {self.space.canonical(a) for a, _ in self.members}
        for r in rollouts:
            arch = self.space.canonical(tuple(r.arch))
            if arch in seen or not r.perfs:
                continue
            seen.add(arch)
            self.members.append((tuple(r.arch), {k: float(v) for k, v in r.perfs.items()}))
        if self.members:
            self._select()

    def front(self) -> list[tuple[Arch, dict[str, float]]]:
        return [m for m, r in zip(self.members, self._rank) if r == 0]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state(), "directions": dict(self.directions),
                "members": [[list(a), dict(p)] for a, p in self.members]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])
        self.directions = dict(state.get("directions") or self.directions)
        self.members = [(tuple(int(x) for x in a), {k: float(v) for k, v in p.items()}) for a, p in state["members"]]
        if self.members:
            self._select()
