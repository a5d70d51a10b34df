"""Mixed-op supernets: ENAS sharing with exact export, gradients to every group, GDAS
hard paths, PC-DARTS partial channels, FBNet chains, and the pairing rules."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.config import build_space
from hwnas.errors import ConfigError
from hwnas.search.archweights import ArchWeights, gumbel_softmax, mask_tensor, masked_softmax
from hwnas.search.rollout import Rollout
from hwnas.search.weights.diff_supernet import DiffSupernet
from hwnas.search.weights.supernet_darts import DartsSupernet

TINY = {"cells": 3, "channels": 4, "nodes": 2, "resolution": 8, "in_channels": 1}


def soft_rollout(wm: DiffSupernet, arch: tuple[int, ...]) -> tuple[Rollout, dict[str, torch.Tensor]]:
    logits = {g.name: torch.randn(g.shape, requires_grad=True) for g in wm.param_groups()}
    w = {g.name: masked_softmax(logits[g.name], mask_tensor(g)) for g in wm.param_groups()}
    return Rollout(arch, arch_weights=ArchWeights(w)), logits


def test_enas_supernet_subnets_export_exactly() -> None:
    space = build_space("darts", TINY)
    wm = DartsSupernet(space=space, seed=1)
    wm.module.eval()
    x = torch.randn(3, 1, 8, 8)
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = space.sample(rng)
        torch.testing.assert_close(wm.assemble_candidate(Rollout(arch))(x), wm.export_subnet(arch)(x))


def test_gradients_reach_every_group_including_edge_weights() -> None:
    space = build_space("darts", TINY)
    wm = DiffSupernet(DiffSupernet.Options(partial_channels=2, edge_normalization=True), space=space)
    assert [g.name for g in wm.param_groups()] == ["normal", "reduce", "normal.edges", "reduce.edges"]
    r, logits = soft_rollout(wm, space.sample(np.random.default_rng(0)))
    wm.assemble_candidate(r)(torch.randn(4, 1, 8, 8)).logsumexp(1).sum().backward()
    for name, a in logits.items():
        assert a.grad is not None and float(a.grad.abs().sum()) > 0, name


def test_gdas_hard_paths_run_one_op_per_edge_and_change_no_value() -> None:
    space = build_space("darts", TINY)
    fast = DiffSupernet(space=space, seed=0)
    full = DiffSupernet(DiffSupernet.Options(hard_paths=False), space=space, seed=0)
    gen = torch.Generator().manual_seed(0)
    logits = {g.name: torch.zeros(g.shape, requires_grad=True) for g in fast.param_groups()}
    w, idx = {}, {}
    for g in fast.param_groups():
        w[g.name], idx[g.name] = gumbel_softmax(logits[g.name], None, 1.0, gen, hard=True)
    r = Rollout(space.sample(np.random.default_rng(0)), arch_weights=ArchWeights(w, idx))
    calls = []
    hooks = [m.register_forward_hook(lambda *a: calls.append(1))
             for cell in fast.module.cells for e in cell.edges for m in e.ops]
    x = torch.randn(4, 1, 8, 8)
    y = fast.assemble_candidate(r)(x)
    for h in hooks:
        h.remove()
    n_edges = sum(len(cell.edges) for cell in fast.module.cells)
    assert len(calls) == n_edges  # one op per edge
    torch.testing.assert_close(y, full.assemble_candidate(r)(x))
    y.sum().backward()
    assert all(float(a.grad.abs().sum()) > 0 for a in logits.values())


def test_block_wise_spaces_get_fbnet_supernets() -> None:
    space = build_space("fbnet", {"num_classes": 10, "resolution": 8, "in_channels": 1, "head_channels": 32})
    wm = DiffSupernet(space=space)
    r, logits = soft_rollout(wm, space.sample(np.random.default_rng(0)))
    wm.assemble_candidate(r)(torch.randn(4, 1, 8, 8)).sum().backward()
    assert all(float(a.grad.abs().sum()) > 0 for a in logits.values())
    plain = wm.assemble_candidate(Rollout(space.sample(np.random.default_rng(1))))  # discrete path
    assert plain(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_unsupported_spaces_and_options_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"diff_supernet serves the search space\(s\) .*darts.*got 'nb201'"):
        DiffSupernet(space=build_space("nb201", {"channels": 4, "cells_per_stage": 1}))
    with pytest.raises(ConfigError, match="partial_channels: 3 must divide"):
        DiffSupernet(DiffSupernet.Options(partial_channels=3), space=build_space("darts", TINY))
    with pytest.raises(ConfigError, match=r"darts_supernet serves the search space\(s\) darts,"):
        DartsSupernet(space=build_space("nb201", {"channels": 4, "cells_per_stage": 1}))
    with pytest.raises(ConfigError, match="train the derived architecture from scratch"):
        DiffSupernet(space=build_space("darts", TINY)).export_subnet(build_space("darts", TINY).sample(
            np.random.default_rng(0)))
