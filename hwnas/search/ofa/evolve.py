"""Evolutionary search over the accuracy predictor under one latency budget.

OFA's evolution finder: a population of subnets that meet the budget, the best
``parents`` share by predicted accuracy kept each generation, children by mutation
(each decision resampled with ``mutate_prob``) and by uniform crossover of two parents;
a child over budget is redrawn. Costs are cached per canonical architecture, so the
cost source sees each network once per target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import InputError
from hwnas.search.spaces.base import Arch, SearchSpace


@dataclass(frozen=True)
class EvolutionOptions:
    """Sizes of the evolution (OFA's finder uses 100 x 500 on ImageNet; subnets here are few)."""

    population: int = 100
    generations: int = 30
    parents: float = 0.25
    mutate_prob: float = 0.1
    mutation_share: float = 0.5
    seed: int = 0


@dataclass
class Found:
    """The best subnet within the budget and what it took to find it."""

    arch: Arch
    accuracy: float
    cost: float
    priced: int


class CostCache:
    """Costs of canonical architectures from one cost function, each priced once."""

    def __init__(self, space: SearchSpace, price: Callable[[list[Arch]], np.ndarray]) -> None:
        self.space, self.price, self.known = space, price, {}  # type: ignore[var-annotated]

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        keys = [self.space.canonical(a) for a in archs]
        todo = list(dict.fromkeys(k for k in keys if k not in self.known))
        if todo:
            for k, v in zip(todo, self.price(todo)):
                self.known[k] = float(v)
        return np.array([self.known[k] for k in keys])

    def cheapest(self) -> tuple[Arch, float]:
        k = min(self.known, key=self.known.__getitem__)
        return k, self.known[k]


def _mutate(space: SearchSpace, a: Arch, p: float, rng: np.random.Generator) -> Arch:
    return tuple(int(rng.integers(d.size)) if rng.random() < p else v for d, v in zip(space.decisions, a))


def _cross(a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))


def _feasible_pool(space: SearchSpace, costs: CostCache, budget: float, n: int, smallest: Arch,
                   rng: np.random.Generator) -> list[Arch]:
    """``n`` subnets within budget: random ones, topped up with mutations of the feasible
    ones found (starting from the smallest subnet) when the budget is tight."""
    cand = [space.sample(rng) for _ in range(4 * n)]
    pool = [a for a, c in zip(cand, costs(cand)) if c <= budget][:n]
    seeds = pool or [smallest]
    tries = 0
    while len(pool) < n and tries < 20:
        kids = [_mutate(space, seeds[int(rng.integers(len(seeds)))], 0.2, rng) for _ in range(n)]
        pool += [a for a, c in zip(kids, costs(kids)) if c <= budget][:n - len(pool)]
        seeds = pool or seeds
        tries += 1
    return pool


def evolve(space: SearchSpace, predict: Callable[[list[Arch]], np.ndarray], costs: CostCache, budget: float,
           o: EvolutionOptions, smallest: Arch, describe: Callable[[float], str] = str) -> Found:
    """The highest predicted accuracy within ``budget``; a budget the smallest subnet
    misses and no sampled subnet meets is one line naming the cheapest cost seen."""
    rng = np.random.default_rng(o.seed)
    check_feasible(space, costs, budget, smallest, describe, o.seed)
    pop = _feasible_pool(space, costs, budget, o.population, smallest, rng)
    if not pop:
        _infeasible(space, costs, budget, smallest, describe)
    n_par = max(2, int(o.parents * o.population))
    n_mut = int(round(o.mutation_share * (o.population - n_par)))
    fit = predict(pop)
    for _ in range(o.generations):
        best = np.argsort(-fit)[:n_par]
        parents = [pop[i] for i in best]
        kids: list[Arch] = []
        for _ in range(10):
            want = o.population - n_par - len(kids)
            if want <= 0:
                break
            muts = [_mutate(space, parents[int(rng.integers(len(parents)))], o.mutate_prob, rng)
                    for _ in range(min(want, n_mut) if not kids else want)]
            cross = [_cross(parents[int(rng.integers(len(parents)))], parents[int(rng.integers(len(parents)))], rng)
                     for _ in range(max(0, want - len(muts)))]
            new = muts + cross
            kids += [a for a, c in zip(new, costs(new)) if c <= budget][:want]
        pop = parents + kids
        fit = np.concatenate([fit[best], predict(kids)]) if kids else fit[best]
    i = int(np.argmax(fit))
    return Found(space.canonical(pop[i]), float(fit[i]), float(costs([pop[i]])[0]), len(costs.known))


def check_feasible(space: SearchSpace, costs: CostCache, budget: float, smallest: Arch,
                   describe: Callable[[float], str] = str, seed: int = 0, tries: int = 200) -> None:
    """Refuse (one line) a budget below the smallest subnet's cost that none of ``tries``
    random subnets meets either (a non-additive cost model may price another lower)."""
    if float(costs([smallest])[0]) <= budget:
        return
    rng = np.random.default_rng(seed + 99)
    if float(costs([space.sample(rng) for _ in range(tries)]).min()) > budget:
        _infeasible(space, costs, budget, smallest, describe)


def _infeasible(space: SearchSpace, costs: CostCache, budget: float, smallest: Arch,
                describe: Callable[[float], str]) -> None:
    arch, cost = costs.cheapest()
    c_small = float(costs([smallest])[0])
    arch, cost = (smallest, c_small) if c_small <= cost else (arch, cost)
    raise InputError(f"budget {describe(budget)}: no subnet meets it; the cheapest achievable is "
                     f"{describe(cost).split(' (')[0]}: {space.to_str(arch)}")


def describe_ms(unit: str) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        return f"{v:.4g} {unit}"
    return fmt


__all__ = ["CostCache", "EvolutionOptions", "Found", "check_feasible", "evolve", "describe_ms"]
