"""dense_cell: dense connectivity (every node reads the cell input and all earlier nodes),
discrete and differentiable rollouts on the diff_supernet, and the shipped miniature
configs (DARTS, GDAS, evolution) cut short."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hwnas.errors import ConfigError, ValidationError
from hwnas.nn.builders import build_network, build_primitive
from hwnas.search.spaces.dense_cell import DenseCellSpace
from hwnas.search.weights.diff_supernet import DiffSupernet
from hwnas.search.weights.mixed import MixedPlan

from .conftest import write_config

SMALL = {"cells": 2, "nodes": 3, "growth": 4, "stem_channels": 6, "resolution": 8, "in_channels": 1}
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_nodes_read_every_earlier_node() -> None:
    space = DenseCellSpace(**SMALL)
    arch = space.sample(np.random.default_rng(0))
    net = space.to_network(arch)
    layers = [p for p in net.nodes if p.op == "dense_layer"]
    # node i of a cell reads the cell input (6 or the compressed width) plus i x growth channels
    assert [p.c_in for p in layers[:3]] == [6, 10, 14] and [p.c_out for p in layers[:3]] == [10, 14, 18]
    trans = next(p for p in net.nodes if p.op == "dense_transition")
    assert (trans.c_in, trans.c_out, trans.stride) == (18, 9, 2)
    assert [p.c_in for p in layers[3:]] == [9, 13, 17]
    # a dense layer passes everything before it through unchanged, then appends growth channels
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        y = build_primitive(layers[0])(x)
    assert y.shape == (2, 10, 8, 8) and torch.equal(y[:, :6], x)
    assert build_network(net)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    graph = space.cell_graph(arch)  # explicit DAG: node i has edges from the input and nodes < i
    assert sorted(graph.predecessors(3)) == [0, 1, 2] and len(graph.predecessors(len(graph.nodes) - 1)) == 4


def test_forms_and_refusals() -> None:
    space = DenseCellSpace(**SMALL)
    arch = space.sample(np.random.default_rng(1))
    assert space.from_str(space.to_str(arch)) == arch
    assert space.from_jsonable(space.to_jsonable(arch)) == arch
    with pytest.raises(ValidationError, match="expected 2 cells of 3 ops"):
        space.from_str("conv3x3,conv3x3")
    with pytest.raises(ValidationError, match="unknown op 'conv7x7'"):
        space.from_str("conv3x3,conv3x3,conv7x7|conv3x3,conv3x3,conv3x3")
    with pytest.raises(ConfigError, match="unknown operation 'conv9x9'"):
        DenseCellSpace(ops=["conv9x9"])


def test_differentiable_rollouts_on_the_supernet() -> None:
    """One-hot architecture weights run exactly the discrete subnet; soft weights mix, and
    the loss reaches every architecture parameter; derive inverts arch_weights."""
    space = DenseCellSpace(**SMALL)
    arch = space.sample(np.random.default_rng(2))
    assert space.derive(space.arch_weights(arch)) == arch
    module = DiffSupernet(space=space, seed=0).module.eval()
    x = torch.randn(3, 1, 8, 8)
    one_hot = {k: torch.tensor(v, dtype=torch.float32) for k, v in space.arch_weights(arch).items()}
    plan = DiffSupernet(space=space).config_of(arch)
    with torch.no_grad():
        assert torch.allclose(module(x, MixedPlan(one_hot)), module(x, plan), atol=1e-5)
    logits = {g.name: torch.zeros(g.shape, requires_grad=True) for g in space.param_groups()}
    module(x, MixedPlan({k: v.softmax(-1) for k, v in logits.items()})).logsumexp(-1).sum().backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in logits.values())
    terms = space.cost_terms()
    fixed = [t for t in terms if t.group is None]
    assert len(fixed) == 1 + (SMALL["cells"] - 1) + 2  # stem, transitions, pool + fc
    assert len(terms) - len(fixed) == SMALL["cells"] * SMALL["nodes"] * len(space.ops)
    # with one-hot weights the expected cost is the cost of the discrete network's nodes
    cost = {p.key: 1.0 + (hash(p.key) % 97) for p in space.primitives()}
    w = space.arch_weights(arch)
    expected = sum(cost[t.primitive.key] * t.scale * (1.0 if t.group is None else w[t.group][t.row, t.choice])
                   for t in terms)
    assert expected == pytest.approx(sum(cost[p.key] for p in space.to_network(arch).nodes))


def _short(name: str, tmp_path: Path, trainer: dict) -> Path:
    data = yaml.safe_load((CONFIGS / name).read_text())
    data["trainer"].update(trainer)
    data["dataset"]["max_train"] = 192
    return write_config(tmp_path / name, **data)


@pytest.mark.parametrize("name,trainer", [
    ("search-dense-darts-cpu.yaml", {"epochs": 1, "steps_per_epoch": 3}),
    ("search-dense-gdas-cpu.yaml", {"epochs": 2, "steps_per_epoch": 2}),
    ("search-dense-evolution-cpu.yaml", {"steps": 3}),
])
def test_miniature_configs_run(name: str, trainer: dict, tmp_path: Path) -> None:
    from hwnas.search.api import run_search

    out = run_search(_short(name, tmp_path, trainer), run_dir=tmp_path / "run")
    assert out["rollouts"] >= 1
    best = yaml.safe_load((tmp_path / "run" / "summary.yaml").read_text())["best"]
    opts = yaml.safe_load((CONFIGS / name).read_text())["search_space"]
    space = DenseCellSpace(**{k: v for k, v in opts.items() if k != "type"})
    arch = space.from_str(best["arch_str"])
    assert space.validate(arch) == arch and 0.0 <= best["perfs"]["accuracy"] <= 1.0
