"""The NAS-Bench-201 supernet: shared (edge, op) weights; candidate == standalone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.nb201 import EDGES, OPS, NB201Space
from hwnas.search.weights.supernet_nb201 import NB201Supernet


def _space() -> NB201Space:
    return NB201Space(channels=4, cells_per_stage=1, resolution=16, in_channels=1)


def test_candidate_equals_exported_standalone_module() -> None:
    space = _space()
    wm = NB201Supernet(space=space, seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in wm.module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    x = torch.randn(3, 1, 16, 16)
    rng = np.random.default_rng(0)
    # Random cells plus the corner cases: all-'none' edges into nodes, all convs.
    archs = [space.sample(rng) for _ in range(4)]
    archs += [(0,) * len(EDGES), wm.extreme_arch("max"), wm.extreme_arch("min")]
    for arch in archs:
        cand = wm.assemble_candidate(Rollout(arch)).eval()
        with torch.no_grad():
            torch.testing.assert_close(cand(x), wm.export_subnet(arch)(x), atol=1e-5, rtol=1e-5)


def test_weights_are_shared_per_cell_edge_op() -> None:
    space = NB201Space(channels=4, cells_per_stage=2, resolution=16, in_channels=1)
    wm = NB201Supernet(space=space)
    # 3 stages x 2 cells, each with 6 edges x 5 ops.
    assert len(wm.module.cells) == 6
    assert all(set(d) == set(OPS) for cell in wm.module.cells for d in cell)
    conv = OPS.index("nor_conv_3x3")
    a = (conv,) * 6
    b = (conv,) * 5 + (OPS.index("skip_connect"),)
    ma, mb = wm.module.node_modules(a), wm.module.node_modules(b)
    shared = sum(1 for x, y in zip(ma, mb) if x is y)
    assert shared == len(ma) - 6  # only edge 5 of each of the 6 cells differs
    # Training one candidate moves the shared conv used by the other.
    before = wm.module.cells[0][0]["nor_conv_3x3"][1].weight.clone()
    cand = wm.assemble_candidate(Rollout(a)).train()
    opt = torch.optim.SGD(wm.module.parameters(), lr=0.1)
    cand(torch.randn(4, 1, 16, 16)).sum().backward()
    opt.step()
    assert not torch.equal(before, wm.module.cells[0][0]["nor_conv_3x3"][1].weight)


def test_wrong_space_is_refused() -> None:
    with pytest.raises(ConfigError, match="nb201"):
        NB201Supernet(space=MBV2Space(resolution=32, width=0.25))
