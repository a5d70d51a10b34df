"""The differentiable hardware objective: expected cost = table sums, gradients to the
logits, both losses, both sources, and a source missing an op of the space."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.config import build_space, parse_options
from hwnas.cost_models import save_model
from hwnas.cost_models.lut import LUTModel
from hwnas.errors import ConfigError
from hwnas.search.archweights import ArchWeights, from_numpy, masked_softmax
from hwnas.search.objectives.diff_hardware import DiffHardwareObjective
from hwnas.search.rollout import Rollout

from .conftest import fake_store

FBNET = {"num_classes": 10, "resolution": 8, "in_channels": 1, "head_channels": 32}
DARTS = {"cells": 3, "channels": 4, "nodes": 2, "resolution": 8, "in_channels": 1}


def objective(space_name: str, space_opts: dict, store: Path, **opts: object) -> DiffHardwareObjective:
    o = parse_options(DiffHardwareObjective.Options, {"store": str(store), "device": "fake-cpu", "backend": "torch",
                                                      **opts}, "objective")
    return DiffHardwareObjective(o, space=build_space(space_name, space_opts))


def test_expected_latency_of_a_one_hot_chain_is_its_table_sum(tmp_path: Path) -> None:
    space = build_space("fbnet", FBNET)
    obj = objective("fbnet", FBNET, fake_store(tmp_path / "s.sqlite", space))
    for arch in (space.sample(np.random.default_rng(i)) for i in range(3)):
        derived = obj.perfs([Rollout(arch)])[0]["latency_ms"]
        expected = float(obj.table().expected(from_numpy(space.arch_weights(arch)).weights))
        assert expected == pytest.approx(derived, rel=1e-5)


def test_latency_gradients_steer_the_logits_to_cheaper_cells(tmp_path: Path) -> None:
    space = build_space("darts", DARTS)
    obj = objective("darts", DARTS, fake_store(tmp_path / "s.sqlite", space), loss="lagrange", budget=1e-4, lam=1.0)
    logits = [torch.zeros(g.shape, requires_grad=True) for g in space.param_groups()]
    opt = torch.optim.Adam(logits, lr=0.1)

    def rollout() -> Rollout:
        w = {g.name: masked_softmax(a, None) for g, a in zip(space.param_groups(), logits)}
        return Rollout(space.sample(np.random.default_rng(0)), arch_weights=ArchWeights(w))

    low = obj.table().minimum  # the cheapest cell everywhere
    start = float(obj.expected(rollout()).detach()) - low
    for _ in range(30):
        opt.zero_grad()
        obj.arch_loss(torch.tensor(1.0), rollout()).backward()
        assert all(float(a.grad.abs().sum()) > 0 for a in logits)
        opt.step()
    assert float(obj.expected(rollout()).detach()) - low < 0.5 * start  # most of the way to the cheapest
    cheap = space.genotype(space.derive({g.name: a.detach().numpy() for g, a in zip(space.param_groups(), logits)}))
    assert all(op not in ("sep_conv_5x5", "dil_conv_5x5") for node in cheap["normal"] for op, _ in node)


def test_fbnet_loss_and_the_model_source(tmp_path: Path) -> None:
    space = build_space("fbnet", FBNET)
    store = fake_store(tmp_path / "s.sqlite", space)
    obj = objective("fbnet", FBNET, store, a=0.2, b=0.6, scale=1000.0)
    w = from_numpy(space.arch_weights(space.sample(np.random.default_rng(0))))
    r = Rollout(space.sample(np.random.default_rng(0)), arch_weights=w)
    lat = float(obj.expected(r).detach())
    assert float(obj.arch_loss(torch.tensor(2.0), r)) == pytest.approx(2.0 * 0.2 * np.log(lat * 1000) ** 0.6, rel=1e-5)
    from hwnas.store import Store

    with Store(store, create=False) as st:
        prim = st.table(st.find_device("fake-cpu")["id"], "torch")
    save_model(LUTModel().fit([], None, prim), tmp_path / "lut")
    o = parse_options(DiffHardwareObjective.Options, {"model": str(tmp_path / "lut")}, "objective")
    by_model = DiffHardwareObjective(o, space=space)
    assert float(by_model.expected(r)) == pytest.approx(lat, rel=1e-5)
    with pytest.raises(ConfigError, match="objective.scale: the fbnet loss takes log"):
        objective("fbnet", FBNET, store, scale=1.0).arch_loss(torch.tensor(1.0), r)


def test_a_source_missing_an_op_of_the_space_is_named(tmp_path: Path) -> None:
    store = fake_store(tmp_path / "s.sqlite", build_space("darts", {**DARTS, "ops": ["skip_connect", "sep_conv_3x3"]}))
    obj = objective("darts", DARTS, store)
    with pytest.raises(ConfigError, match=r"objective.store: .*s.sqlite has no latency of primitive "
                                          r"'.*' \(op (none|pool|dil_conv|sep_conv)\) for device 'fake-cpu' / "
                                          r"backend 'torch' of space darts") as info:
        obj.table()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="give exactly one per-primitive cost source"):
        parse_options(DiffHardwareObjective.Options, {}, "objective")
