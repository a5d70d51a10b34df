"""Search-space operators and string forms (the spaces themselves are in hwnas/search/spaces)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwnas.errors import ValidationError
from hwnas.search.spaces.fbnet import FBNetSpace
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.nb201 import NB201Space

from .conftest import NB201_TABLE

SPACES = [MBV2Space(resolution=32, width=0.35, num_classes=10), NB201Space(), FBNetSpace()]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_mutate_changes_an_active_decision(space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        b = space.mutate(a, rng)
        changed = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert len(changed) == 1 and changed[0] in space.active(a)
        assert space.to_str(a) != space.to_str(b)  # a different network, not just a different vector


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_crossover_mixes_parents(space) -> None:
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    kids = [space.crossover(a, b, rng) for _ in range(20)]
    for k in kids:
        assert all(x in (p, q) for x, p, q in zip(k, a, b))
    differ = [i for i in range(len(a)) if a[i] != b[i]]
    from_a = {i for k in kids for i in differ if k[i] == a[i]}
    from_b = {i for k in kids for i in differ if k[i] == b[i]}
    assert from_a and from_b


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_string_round_trip(space) -> None:
    rng = np.random.default_rng(2)
    for _ in range(30):
        a = space.sample(rng)
        assert space.from_str(space.to_str(a)) == space.canonical(a)
        assert space.from_jsonable(space.to_jsonable(a)) == a
    with pytest.raises(ValidationError):
        space.from_str("not an architecture")


def test_mbv2_canonical_drops_inactive_choices() -> None:
    space = MBV2Space()
    rng = np.random.default_rng(3)
    a = space.sample(rng)
    assert space.to_network(a).hash == space.to_network(space.canonical(a)).hash


def test_nb201_strings_match_the_published_table() -> None:
    df = pd.read_csv(NB201_TABLE)
    space = NB201Space()
    assert len(df) == 15_625
    archs = {space.from_str(s) for s in df.arch_str}
    assert len(archs) == 15_625  # every cell once: the table covers the space exactly
    for s in df.arch_str.sample(200, random_state=0):
        a = space.from_str(s)
        assert space.to_str(a) == s
        net = space.to_network(a)
        assert net.get_meta("arch") == s and net.nodes[-1].op == "fc"


def test_encode_is_one_hot_per_decision() -> None:
    space = NB201Space()
    a = (0, 1, 2, 3, 4, 0)
    e = space.encode(a)
    assert e.sum() == 6 and e.shape == (30,) and e[5 + 1] == 1
