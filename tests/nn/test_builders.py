"""Builders: every primitive of every space has the shape its Primitive promises,
and sampled networks of each space run end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas import registry
from hwnas.errors import HwnasError
from hwnas.nn.builders import build_network, build_primitive, example_input
from hwnas.primitives import NetworkSpec, Primitive

SPACES = {
    "mbv2": {"resolution": 32, "width": 0.25},
    "nb201": {"channels": 4, "cells_per_stage": 1, "resolution": 16},
    "fbnet": {"resolution": 16, "head_channels": 64},
}


def _space(name: str):
    return registry.build("search_space", name, **SPACES[name])


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_primitive_has_its_promised_shape(name: str) -> None:
    prims = _space(name).primitives()
    assert prims
    with torch.no_grad():
        for p in prims:
            y = build_primitive(p)(example_input(p, batch=2))
            if p.op == "fc":
                assert tuple(y.shape) == (2, p.c_out), p.key
            else:
                assert tuple(y.shape) == (2, p.c_out, *p.out_hw), p.key


@pytest.mark.parametrize("name", sorted(SPACES))
def test_sampled_networks_run(name: str) -> None:
    space = _space(name)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(3):
            net = space.to_network(space.sample(rng))
            y = build_network(net)(example_input(net, batch=1))
            assert y.shape[0] == 1 and torch.isfinite(y).all()


def test_extra_ops_shapes() -> None:
    prims = [
        Primitive("dwconv", 8, 8, 9, 9, kernel=5, stride=2, act="hswish"),
        Primitive("mbconv", 8, 8, 9, 9, kernel=3, expansion=4, act="hswish", se=True),
        Primitive("pool", 4, 4, 7, 7, kernel=3, stride=2, extras={"mode": "max"}),
        Primitive("pool", 4, 4, 7, 7, kernel=3, stride=2, extras={"mode": "avg"}),
        Primitive("nb201_resblock", 4, 8, 7, 7, kernel=3, stride=2),
        Primitive("none", 4, 4, 6, 6),
        Primitive("identity", 4, 4, 6, 6),
    ]
    with torch.no_grad():
        for p in prims:
            y = build_primitive(p)(example_input(p))
            assert tuple(y.shape) == (1, p.c_out, *p.out_hw), p.key


def test_residual_and_dag_sum_semantics() -> None:
    # skip + skip merging into one node doubles the input: checks the sum-at-merge rule.
    p = Primitive("skip_connect", 2, 2, 4, 4)
    net = NetworkSpec((2, 4, 4), (p, p, p, p), ((0, 1), (0, 2), (1, 3), (2, 3)))
    x = torch.randn(1, 2, 4, 4)
    assert torch.allclose(build_network(net)(x), 2 * x)
    zero = build_primitive(Primitive("none", 2, 2, 4, 4))
    assert torch.count_nonzero(zero(x)) == 0


def test_unknown_op_is_a_hwnas_error() -> None:
    with pytest.raises(HwnasError):
        build_primitive(Primitive("warpdrive", 2, 2, 4, 4))
