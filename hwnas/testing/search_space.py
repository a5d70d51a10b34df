"""Contract suite of the ``search_space`` role (see hwnas/search/spaces/base.py).

Architectures travel as strings (CSV, the CLI), as JSON/YAML (pareto.yaml, configs)
and as networks (profiling, cost models); the suite samples architectures and checks
that every one of those forms comes back to the same network, that every node of a
network is a primitive the space announces (so a profiled table covers the space),
and that the variation operators controllers use stay inside the space.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.testing._common import ContractError, expect
from hwnas.testing._search import example_config

ROLE = "search_space"
SAMPLES = 12


def build(name: str, tmp_dir: Path) -> SearchSpace:
    space = example_config(ROLE, name, tmp_dir)[ROLE].build()
    expect(isinstance(space, SearchSpace), ROLE, name, "must subclass hwnas.search.spaces.base.SearchSpace")
    return space


def check_decisions(name: str, space: SearchSpace) -> None:
    ds = space.decisions
    expect(len(ds) > 0 and all(d.size >= 1 for d in ds), ROLE, name, "needs at least one decision, each with options")
    expect(len({d.name for d in ds}) == len(ds), ROLE, name, "decision names must be unique")
    expect(space.size() == float(np.prod([float(d.size) for d in ds])), ROLE, name, "size() must be the product")
    prims = space.primitives()
    keys = [p.key for p in prims]
    expect(keys == sorted(set(keys)), ROLE, name, "primitives() must be deduplicated by key and sorted by key")
    for bad in ([0] * (len(ds) + 1), [d.size for d in ds]):
        try:
            space.validate(bad)
        except HwnasError:
            continue
        raise ContractError(f"{ROLE} {name!r}: validate({bad}) must raise a ValidationError")


def same_network(space: SearchSpace, a: Arch, b: Arch) -> bool:
    return space.to_network(a).hash == space.to_network(b).hash


def check_forms(name: str, space: SearchSpace, arch: Arch) -> None:
    """String and JSON forms round-trip (up to canonical form), also through JSON text."""
    text = space.to_str(arch)
    expect(isinstance(text, str) and "\n" not in text, ROLE, name, f"to_str() must give one line, got {text!r}")
    back = space.from_str(text)
    expect(space.canonical(back) == space.canonical(arch), ROLE, name,
           f"from_str(to_str(a)) must give a back: {arch} -> {text!r} -> {back}")
    obj = space.to_jsonable(arch)
    try:
        again = space.from_jsonable(json.loads(json.dumps(obj)))
    except (TypeError, ValueError, HwnasError) as exc:
        raise ContractError(f"{ROLE} {name!r}: to_jsonable({arch}) = {obj!r} does not survive JSON text "
                            f"and from_jsonable: {exc}") from None
    expect(space.canonical(again) == space.canonical(arch), ROLE, name,
           f"from_jsonable(to_jsonable(a)) must give a back: {arch} -> {obj!r} -> {again}")
    expect(space.from_jsonable(list(arch)) == arch, ROLE, name, "from_jsonable() must accept a list of indices")


def check_network(name: str, space: SearchSpace, arch: Arch, keys: set[str]) -> None:
    net = space.to_network(arch)
    missing = [p.key for p in net.nodes if p.key not in keys]
    expect(not missing, ROLE, name, f"to_network({arch}) has nodes not in primitives(): {missing[:3]}")
    canon = space.canonical(arch)
    expect(space.canonical(canon) == canon and same_network(space, arch, canon), ROLE, name,
           f"canonical({arch}) must be idempotent and give the same network")
    code = space.encode(arch)
    expect(code.shape == (sum(space.sizes),) and int(code.sum()) == len(arch), ROLE, name,
           "encode() must be one one-hot per decision")


def check_variation(name: str, space: SearchSpace, arch: Arch, rng: np.random.Generator) -> None:
    """mutate and crossover stay valid; mutate changes the arch."""
    if any(space.decisions[i].size > 1 for i in space.active(arch)):
        child = space.mutate(arch, rng)
        expect(space.validate(child) == child and child != arch, ROLE, name,
               f"mutate({arch}) must give a different valid arch, got {child}")
    mixed = space.crossover(arch, space.sample(rng), rng)
    expect(space.validate(mixed) == mixed, ROLE, name, f"crossover() gave an invalid arch {mixed}")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Every space rule on a few sampled architectures."""
    space = build(name, Path(tmp_dir))
    check_decisions(name, space)
    keys = {p.key for p in space.primitives()}
    rng = np.random.default_rng(0)
    for _ in range(SAMPLES):
        arch = space.sample(rng)
        expect(isinstance(arch, tuple) and space.validate(arch) == arch, ROLE, name,
               f"sample() must give a valid tuple of ints, got {arch!r}")
        check_forms(name, space, arch)
        check_network(name, space, arch, keys)
        check_variation(name, space, arch, rng)
