"""The darts cell space: genotypes, networks, primitives, derivation, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.config import build_space
from hwnas.errors import ConfigError, ValidationError
from hwnas.nn.builders import build_network, build_primitive
from hwnas.search.spaces.differentiable import weights_from_jsonable, weights_to_jsonable

TINY = {"cells": 3, "channels": 4, "nodes": 3, "resolution": 8, "in_channels": 1}
#: DARTS' published second-order cell (DARTS_V2), as the reference code prints it.
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def test_genotype_round_trips_and_networks_run() -> None:
    space = build_space("darts", TINY)
    rng = np.random.default_rng(0)
    prims = {p.key for p in space.primitives()}
    for _ in range(10):
        arch = space.sample(rng)
        assert space.from_str(space.to_str(arch)) == arch
        assert space.from_jsonable(space.to_jsonable(arch)) == arch
        spec = space.to_network(arch)
        assert {n.key for n in spec.nodes} <= prims
        assert spec.hash == space.to_network(space.canonical(arch)).hash
        assert build_network(spec)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    for p in space.primitives():  # every primitive builds and keeps its declared shape
        y = build_primitive(p)(torch.randn(1, p.c_in, p.h, p.w))
        assert y.shape[1] == p.c_out and (p.op == "fc" or tuple(y.shape[2:]) == p.out_hw), p.key


def test_published_darts_cell_has_the_papers_size() -> None:
    space = build_space("darts", {"cells": 20, "channels": 36})
    arch = space.from_str(DARTS_V2)
    assert space.to_str(arch).startswith("normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|")
    params = sum(p.numel() for p in build_network(space.to_network(arch)).parameters())
    assert 3.2e6 < params < 3.45e6  # the paper reports 3.3 M (without the auxiliary head)


@pytest.mark.parametrize("text,match", [
    ("normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0", "normal: expected 3 nodes"),
    ("normal:conv_9x9~0,sep_conv_3x3~1|x~0,x~1|x~0,x~1;reduce:x~0,x~1", "normal node 0: unknown op 'conv_9x9'"),
    ("normal:sep_conv_3x3~0,sep_conv_3x3~5|a~0,a~1|a~0,a~1;reduce:a~0,a~1", "normal node 0: input must be 0..1"),
    ("normal:sep_conv_3x3-0", "cannot parse"),
    ("Genotype(normal=[('sep_conv_3x3', 0)])", "cannot parse"),
])
def test_malformed_genotypes_are_one_line_errors(text: str, match: str) -> None:
    space = build_space("darts", TINY)
    with pytest.raises(ValidationError, match=match) as info:
        space.from_str(text)
    assert "\n" not in str(info.value)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="ops: unknown operation 'conv'"):
        build_space("darts", {"ops": ["conv", "skip_connect"]})
    with pytest.raises(ConfigError, match="resolution: must be divisible by 4"):
        build_space("darts", {"resolution": 10})
    enas = build_space("darts", {"nodes": 5, "ops": ["skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                                                     "avg_pool_3x3", "max_pool_3x3"]})
    assert len(enas.decisions) == 2 * 5 * 4 and enas.decisions[1].choices[0] == "skip_connect"


def test_derive_keeps_the_two_strongest_non_none_inputs() -> None:
    space = build_space("darts", {**TINY, "nodes": 2})
    ops = space.ops
    w = {t: np.full((len(space.edge_rows), len(ops)), 0.1) for t in ("normal", "reduce")}
    # node 1 has inputs 0, 1, 2 (rows 2, 3, 4): input 1 is 'none'-dominated, so 0 and 2 win
    w["normal"][2, ops.index("sep_conv_3x3")] = 0.6
    w["normal"][3, ops.index("none")] = 0.9
    w["normal"][3, ops.index("max_pool_3x3")] = 0.2
    w["normal"][4, ops.index("dil_conv_5x5")] = 0.5
    g = space.genotype(space.derive(w))
    assert g["normal"][1] == [("sep_conv_3x3", 0), ("dil_conv_5x5", 2)]
    # edge weights (PC-DARTS) re-rank the inputs
    beta = np.array([[0.5, 0.5, 0.0], [0.05, 0.9, 0.05]])
    g2 = space.genotype(space.derive({**w, "normal.edges": beta}))
    assert g2["normal"][1] == [("sep_conv_3x3", 0), ("max_pool_3x3", 1)]  # 0.6*0.05 and 0.2*0.9 beat 0.5*0.05


def test_arch_weights_and_alphas_round_trip() -> None:
    space = build_space("darts", TINY)
    arch = space.from_str("normal:sep_conv_3x3~0,skip_connect~1|dil_conv_3x3~1,max_pool_3x3~2|"
                          "sep_conv_5x5~0,avg_pool_3x3~3;reduce:max_pool_3x3~0,max_pool_3x3~1|"
                          "skip_connect~0,sep_conv_3x3~2|dil_conv_5x5~2,skip_connect~3")
    w = space.arch_weights(arch)
    assert space.derive(w) == arch
    groups = space.param_groups()
    back = weights_from_jsonable(groups, weights_to_jsonable(groups, w))
    assert space.derive(back) == arch
    with pytest.raises(ValidationError, match=r"alphas.normal: expected a finite 9 x 8 matrix"):
        weights_from_jsonable(groups, {"normal": [[1.0]], "reduce": w["reduce"].tolist()})


@pytest.mark.parametrize("name,options", [("fbnet", {"num_classes": 10, "resolution": 16}),
                                          ("mbv2", {"resolution": 32, "width": 0.5, "num_classes": 10})])
def test_block_wise_spaces_derive_their_one_hot_weights(name: str, options: dict) -> None:
    space = build_space(name, options)
    rng = np.random.default_rng(1)
    for _ in range(10):
        arch = space.sample(rng)
        assert space.derive(space.arch_weights(arch)) == space.canonical(arch)
    keys = {p.key for p in space.primitives()}
    assert {t.primitive.key for t in space.cost_terms()} <= keys
