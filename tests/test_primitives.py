from __future__ import annotations

import json

import pytest

from hwnas.errors import ValidationError
from hwnas.primitives import NetworkSpec, Primitive, unique_primitives


def test_key_is_canonical_and_readable():
    p = Primitive("mbconv", 24, 32, 56, 56, kernel=5, stride=2, expansion=6, act="relu6")
    assert p.key == "mbconv c24>32 56x56 k5 s2 e6 relu6"
    # Field order in the constructor, int/float expansion and extras order do not matter.
    q = Primitive(op="mbconv", act="relu6", expansion=6.0, stride=2, kernel=5, w=56, h=56, c_out=32, c_in=24)
    assert q.key == p.key and q == p
    pool = Primitive("pool", 8, 8, 7, 7, kernel=7, extras={"mode": "global", "b": 1})
    assert pool.key == "pool c8>8 7x7 k7 s1 b=1 mode=global"
    assert Primitive("pool", 8, 8, 7, 7, kernel=7, extras=(("b", 1), ("mode", "global"))).key == pool.key


def test_keys_differ_for_every_field():
    base = dict(op="mbconv", c_in=16, c_out=16, h=8, w=8, kernel=3, stride=1, expansion=3, groups=1,
                act="relu", se=False)
    variants = [dict(c_in=32, c_out=32), dict(c_out=32), dict(h=9), dict(w=9), dict(kernel=5), dict(stride=2),
                dict(expansion=4), dict(groups=2), dict(act="hswish"), dict(se=True), dict(extras={"x": 1})]
    keys = {Primitive(**base).key}
    for v in variants:
        keys.add(Primitive(**{**base, **v}).key)
    assert len(keys) == len(variants) + 1


def test_expansion_fraction_in_key():
    assert Primitive("mbconv", 8, 8, 4, 4, expansion=2.5).key.endswith("e2.5")


@pytest.mark.parametrize("kwargs, field", [
    (dict(c_in=0), "c_in"),
    (dict(c_out=-1), "c_out"),
    (dict(h=1.5), "h"),
    (dict(kernel=True), "kernel"),
    (dict(act="gelu2"), "act"),
    (dict(op="Conv"), "op"),
    (dict(op="conv 2"), "op"),
    (dict(expansion=0), "expansion"),
    (dict(groups=3), "groups"),
    (dict(se="yes"), "se"),
    (dict(extras={"mode": [1]}), "extras"),
])
def test_constructor_errors_name_the_field(kwargs, field):
    base = dict(op="conv", c_in=8, c_out=8, h=4, w=4)
    with pytest.raises(ValidationError, match=rf"Primitive\.{field}"):
        Primitive(**{**base, **kwargs})


def test_primitive_json_round_trip():
    p = Primitive("pool", 8, 8, 7, 7, kernel=7, act="relu", extras={"mode": "global"})
    assert Primitive.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(ValidationError, match="unknown field"):
        Primitive.from_dict({**p.to_dict(), "colour": 1})


def test_network_hash_is_stable(tiny_net):
    # A literal: the hash is a store key and must never change between versions.
    assert tiny_net.hash == NetworkSpec.from_json(tiny_net.to_json()).hash
    assert tiny_net.hash == "6b4d852183654a62"
    # meta does not enter the hash
    other = NetworkSpec(tiny_net.input_shape, tiny_net.nodes, tiny_net.edges, (("space", "elsewhere"),))
    assert other.hash == tiny_net.hash


def test_network_json_round_trip(tiny_net):
    back = NetworkSpec.from_json(tiny_net.to_json())
    assert back == tiny_net
    assert back.meta == tiny_net.meta
    assert back.is_chain


def test_network_validation():
    p = Primitive("conv", 3, 3, 4, 4)
    with pytest.raises(ValidationError, match="input_shape"):
        NetworkSpec((3, 4), (p,))
    with pytest.raises(ValidationError, match="at least one node"):
        NetworkSpec((3, 4, 4), ())
    with pytest.raises(ValidationError, match="forward"):
        NetworkSpec((3, 4, 4), (p, p), ((1, 0),))
    with pytest.raises(ValidationError, match="missing node"):
        NetworkSpec((3, 4, 4), (p, p), ((0, 5),))
    with pytest.raises(ValidationError, match="no input edge"):
        NetworkSpec((3, 4, 4), (p, p, p), ((0, 1),))


def test_dag_and_unique_primitives():
    a = Primitive("conv", 3, 8, 8, 8, kernel=3)
    b = Primitive("skip_connect", 8, 8, 8, 8)
    net = NetworkSpec((3, 8, 8), (a, b, b, b), ((0, 1), (0, 2), (1, 3), (2, 3)))
    assert net.predecessors(3) == [1, 2]
    assert not net.is_chain
    assert [p.key for p in unique_primitives([net])] == [a.key, b.key]
