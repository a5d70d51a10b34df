"""Differentiable controllers: weights in the graph, steps, temperatures, resumable state,
second-order DARTS, and the controller / weights-manager pairing rule."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hwnas import registry
from hwnas.config import build_space
from hwnas.errors import ConfigError
from hwnas.search.build import build_components, load_run_config
from hwnas.search.controllers.differentiable import ArchStep, DifferentiableController
from hwnas.search.weights.diff_supernet import DiffSupernet

from .conftest import write_config

TINY = {"type": "darts", "cells": 3, "channels": 4, "nodes": 2, "resolution": 8, "in_channels": 1}
DIFF = [e.name for e in registry.list("controller") if issubclass(e.obj, DifferentiableController)]


def build(name: str, **options: object) -> tuple[DifferentiableController, DiffSupernet]:
    space = build_space("darts", {k: v for k, v in TINY.items() if k != "type"})
    wm = DiffSupernet(space=space)
    cls = registry.get("controller", name)
    from hwnas.config import parse_options

    return cls(parse_options(cls.Options, options, "controller"), space=space, seed=3, weights_manager=wm), wm


def test_every_differentiable_controller_is_registered() -> None:
    assert {"darts", "gdas", "snas", "fbnet"} <= set(DIFF)


@pytest.mark.parametrize("name", DIFF)
def test_rollouts_carry_weights_whose_loss_steps_the_logits(name: str) -> None:
    ctrl, wm = build(name, lr=0.05)
    r = ctrl.sample(1)[0]
    ctrl.space.validate(r.arch)
    w = r.arch_weights.weights["normal"]
    torch.testing.assert_close(w.sum(1), torch.ones(w.shape[0]))
    assert r.arch_weights.hard == (name == "gdas")
    before = [a.detach().clone() for a in ctrl.logits]
    F.cross_entropy(wm.assemble_candidate(r)(torch.randn(8, 1, 8, 8)), torch.arange(8)).backward()
    ctrl.step([r])
    assert all(not torch.equal(a, b) for a, b in zip(ctrl.logits, before))
    ctrl.step([r])  # no gradient left: nothing changes
    assert all(a.grad is None for a in ctrl.logits)


@pytest.mark.parametrize("name", DIFF)
def test_state_round_trip_repeats_the_samples(name: str) -> None:
    a, _ = build(name)
    a.on_epoch(3, 10)
    state = a.state_dict()
    first = [a.sample(1)[0].arch_weights.weights["reduce"].detach() for _ in range(2)]
    b, _ = build(name)
    b.load_state_dict(state)
    assert b.tau == a.tau
    for w in first:
        torch.testing.assert_close(b.sample(1)[0].arch_weights.weights["reduce"].detach(), w)


def test_temperature_schedules() -> None:
    gdas, _ = build("gdas")
    gdas.on_epoch(0, 5)
    assert gdas.tau == pytest.approx(10.0)
    gdas.on_epoch(4, 5)
    assert gdas.tau == pytest.approx(0.1)
    fbnet, _ = build("fbnet")
    fbnet.on_epoch(2, 90)
    assert fbnet.tau == pytest.approx(5.0 * np.exp(-0.09))


def test_second_order_step_moves_the_logits_and_restores_the_weights() -> None:
    ctrl, wm = build("darts", order=2, lr=0.01)
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    params = list(wm.module.parameters())
    before_w = [p.detach().clone() for p in params]
    before_a = [a.detach().clone() for a in ctrl.logits]

    def loss(r: object, split: str) -> torch.Tensor:
        return F.cross_entropy(wm.assemble_candidate(r)(x), y)  # type: ignore[arg-type]

    stats = ctrl.update(ArchStep(loss, params, lr=0.05, weight_decay=3e-4))
    assert np.isfinite(stats["arch_loss"])
    assert all(torch.equal(p, b) for p, b in zip(params, before_w))
    assert all(not torch.equal(a, b) for a, b in zip(ctrl.logits, before_a))


def test_a_differentiable_controller_needs_a_weights_manager_with_gradients(tmp_path: Path) -> None:
    base = {"search_space": TINY, "dataset": {"type": "digits", "resolution": 8, "channels": 1},
            "objective": {"type": "classification"}, "controller": {"type": "gdas"},
            "trainer": {"type": "differentiable", "epochs": 1}}
    for wm in ("darts_supernet", "plain"):
        cfg = load_run_config(write_config(tmp_path / f"{wm}.yaml", **base, weights_manager={"type": wm}))
        with pytest.raises(ConfigError, match=f"weights_manager.type: controller 'gdas' learns architecture "
                                              f"parameters by gradient, but '{wm}' gives no gradients to them; "
                                              f"use diff_supernet"):
            build_components(cfg)
