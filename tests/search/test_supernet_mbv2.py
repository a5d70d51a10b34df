"""The mbv2 supernet: a candidate runs exactly its subnet on the shared weights, and a
subnet exported to a standalone builders network gives the same outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.nb201 import NB201Space
from hwnas.search.weights.supernet_mbv2 import MBV2Supernet


def _space() -> MBV2Space:
    return MBV2Space(resolution=32, width=0.25, num_classes=10, in_channels=1)


def _randomise(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics/affine and kernel transforms, so equality is not an
    accident of identity initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
        for name, p in module.named_parameters():
            if "transforms" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def test_candidate_equals_exported_standalone_module() -> None:
    torch.manual_seed(0)
    space = _space()
    wm = MBV2Supernet(space=space, seed=0)
    _randomise(wm.module)
    x = torch.randn(3, 1, 32, 32)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(4)] + [wm.extreme_arch("max"), wm.extreme_arch("min")]
    outs = []
    for arch in archs:
        cand = wm.assemble_candidate(Rollout(arch))
        cand.eval()
        standalone = wm.export_subnet(arch)
        assert not standalone.training
        # The standalone network is the space's own network: same number of blocks.
        assert len(standalone.nodes) == len(space.to_network(arch).nodes)
        with torch.no_grad():
            a, b = cand(x), standalone(x)
        assert a.shape == (3, 10)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        outs.append(a)
    # Different subnets really are different networks.
    assert not torch.allclose(outs[-1], outs[-2])


def test_gradients_reach_only_the_used_slices() -> None:
    space = _space()
    wm = MBV2Supernet(space=space, seed=0)
    # Smallest subnet: depth 2, expansion 3, kernel 3 everywhere.
    arch = wm.extreme_arch("min")
    cand = wm.assemble_candidate(Rollout(arch))
    cand.train()
    cand(torch.randn(4, 1, 32, 32)).sum().backward()
    block = wm.module.stages[0][0]
    mid = block.mid(3)
    assert mid < block.mid_max
    assert block.expand.weight.grad[:mid].abs().sum() > 0
    assert block.expand.weight.grad[mid:].abs().sum() == 0
    # Kernel 3 reads only the centre of the 7x7 filters.
    g = block.dw.weight.grad
    assert g[:mid, :, 2:5, 2:5].abs().sum() > 0
    assert g[:, :, 0].abs().sum() == 0
    # The chain of transforms 7->5->3 learns; skipped (depth) blocks get no gradient.
    assert all(p.grad is not None for p in block.transforms.values())
    assert wm.module.stages[0][3].expand.weight.grad is None


def test_plain_centre_crop_without_kernel_transform() -> None:
    wm = MBV2Supernet(MBV2Supernet.Options(kernel_transform=False), space=_space())
    block = wm.module.stages[1][0]
    w3 = block.dw_weight(3, block.mid(4))
    torch.testing.assert_close(w3, block.dw.weight[:block.mid(4), :, 2:5, 2:5])
    assert len(block.transforms) == 0


def test_state_dict_round_trip_and_wrong_space() -> None:
    space = _space()
    a, b = MBV2Supernet(space=space, seed=0), MBV2Supernet(space=space, seed=1)
    b.load_state_dict(a.state_dict())
    arch = space.sample(np.random.default_rng(0))
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a.export_subnet(arch)(x), b.export_subnet(arch)(x))
    with pytest.raises(ConfigError, match="nb201_supernet"):
        MBV2Supernet(space=NB201Space(channels=4, cells_per_stage=1))
