"""The mbv3 supernet: a candidate runs exactly its subnet on the shared weights (SE and
elastic resolution included), small kernels come from the 7x7 weights through OFA's
learned transforms, and gradients reach only what a subnet uses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.search.weights.supernet_mbv3 import MBV3Supernet


def _space() -> MBV3Space:
    return MBV3Space(resolutions=[32, 24], width=0.25, num_classes=10, in_channels=1)


def _randomise(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics, SE biases and kernel transforms, so equality is not an
    accident of initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
        for name, p in module.named_parameters():
            if "transforms" in name or "se_" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


@pytest.mark.timeout(60)
def test_candidate_equals_exported_standalone_module() -> None:
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    _randomise(wm.module)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(4)] + [wm.extreme_arch("max"), wm.extreme_arch("min")]
    outs = {}
    for arch in archs:
        r = space.resolution_of(arch)
        x = torch.randn(3, 1, r, r, generator=torch.Generator().manual_seed(0))
        cand = wm.assemble_candidate(Rollout(arch)).eval()
        standalone = wm.export_subnet(arch)
        assert len(standalone.nodes) == len(space.to_network(arch).nodes)
        with torch.no_grad():
            a, b = cand(x), standalone(x)
        assert a.shape == (3, 10)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        outs[space.to_str(arch)] = a
    assert len(outs) == len(archs)
    a, b = list(outs.values())[-2:]
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_a_candidate_resizes_its_input_to_its_resolution() -> None:
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    _randomise(wm.module, 1)
    arch = space.from_str("r24|" + "|".join(["d2:e4k5,e3k3"] * 5))
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = wm.assemble_candidate(Rollout(arch)).eval()(x)
        want = wm.export_subnet(arch)(F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_small_kernels_come_from_the_7x7_weights_through_the_transforms() -> None:
    wm = MBV3Supernet(space=_space(), seed=0)
    _randomise(wm.module, 2)
    block = wm.module.stages[1][0]  # a stage with squeeze-excite
    mid = block.mid(4)
    w7 = block.dw.weight[:mid]
    t75, t53 = block.transforms["7to5"], block.transforms["5to3"]
    w5 = (w7[:, :, 1:6, 1:6].reshape(mid, 25) @ t75.t()).reshape(mid, 1, 5, 5)
    w3 = (w5[:, :, 1:4, 1:4].reshape(mid, 9) @ t53.t()).reshape(mid, 1, 3, 3)
    torch.testing.assert_close(block.dw_weight(3, mid), w3)
    assert not torch.allclose(w3, w7[:, :, 2:5, 2:5])  # the transform is not a plain crop
    # A 3x3 subnet trains the 7x7 weights' centre and both transforms of the chain.
    arch = wm.space.from_str("r32|" + "|".join(["d2:e4k3,e4k3"] * 5))
    wm.assemble_candidate(Rollout(arch)).train()(torch.randn(4, 1, 32, 32)).sum().backward()
    assert t75.grad is not None and t75.grad.abs().sum() > 0
    assert t53.grad is not None and t53.grad.abs().sum() > 0
    g = block.dw.weight.grad
    assert g[:mid, :, 1:6, 1:6].abs().sum() > 0
    assert g[:, :, 0].abs().sum() == 0 and g[:, :, :, 6].abs().sum() == 0


def test_gradients_reach_only_the_used_slices() -> None:
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    arch = wm.extreme_arch("min")  # depth 2, expansion 3, kernel 3 everywhere
    wm.assemble_candidate(Rollout(arch)).train()(torch.randn(4, 1, 24, 24)).sum().backward()
    block = wm.module.stages[4][0]
    mid = block.mid(3)
    assert block.se and mid < block.mid_max
    assert block.expand.weight.grad[:mid].abs().sum() > 0 and block.expand.weight.grad[mid:].abs().sum() == 0
    red = block.se_slices(mid)[0].shape[0]
    assert red < block.se_reduce.out_channels
    assert block.se_reduce.weight.grad[:red, :mid].abs().sum() > 0
    assert block.se_reduce.weight.grad[red:].abs().sum() == 0 and block.se_expand.weight.grad[mid:].abs().sum() == 0
    skipped = wm.module.stages[0][3]  # depth 2 runs blocks 0 and 1 only
    assert all(p.grad is None for p in skipped.parameters())


def test_it_serves_mbv3_only() -> None:
    with pytest.raises(ConfigError) as err:
        MBV3Supernet(space=MBV2Space(resolution=32, width=0.25, num_classes=10), seed=0)
    assert "mbv3" in str(err.value) and "\n" not in str(err.value)


def test_sorting_channels_keeps_the_largest_subnet_and_puts_important_channels_first() -> None:
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    _randomise(wm.module, 3)
    with torch.no_grad():  # make importance differ clearly between hidden channels
        for stage in wm.module.stages:
            for block in stage:
                block.project.weight.mul_(torch.rand(block.mid_max, generator=torch.Generator().manual_seed(4))
                                          .view(1, -1, 1, 1) * 3)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    largest, smallest = wm.extreme_arch("max"), wm.extreme_arch("min")

    def run(arch: tuple[int, ...]) -> torch.Tensor:
        with torch.no_grad():
            return wm.assemble_candidate(Rollout(arch)).eval()(x)

    before_max, before_min = run(largest), run(smallest)
    block = wm.module.stages[1][0]
    top = torch.sort(block.project.weight.abs().sum(dim=(0, 2, 3)), descending=True).values
    assert wm.sort_channels() == sum(len(s) for s in wm.module.stages)
    importance = block.project.weight.abs().sum(dim=(0, 2, 3))
    torch.testing.assert_close(importance, top)  # most important first
    torch.testing.assert_close(run(largest), before_max, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(run(smallest), before_min)  # the small expansion now keeps other channels


def test_a_second_sort_keeps_the_trained_expansions_channels_in_front() -> None:
    """OFA's re-sort before its second expansion sub-phase: expansion 4's hidden channels
    (what the {6, 4} sub-phase trained) are sorted among themselves and stay in front, so
    the largest and the expansion-4 subnets compute what they did, and expansion 3 now
    takes the most important of expansion 4's channels."""
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    _randomise(wm.module, 3)
    with torch.no_grad():
        for stage in wm.module.stages:
            for block in stage:
                block.project.weight.mul_(torch.rand(block.mid_max, generator=torch.Generator().manual_seed(6))
                                          .view(1, -1, 1, 1) * 3)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(7))
    largest = list(wm.extreme_arch("max"))

    def at_expansion(e: int) -> tuple[int, ...]:
        return space.validate([d.choices.index(e) if d.name.endswith(".e") else v
                               for d, v in zip(space.decisions, largest)])

    def run(arch: tuple[int, ...]) -> torch.Tensor:
        with torch.no_grad():
            return wm.assemble_candidate(Rollout(arch)).eval()(x)

    before = {e: run(at_expansion(e)) for e in (6, 4, 3)}
    block = wm.module.stages[4][0]  # has squeeze-excite
    keep, old = block.mid(4), block.project.weight.abs().sum(dim=(0, 2, 3)).clone()
    assert wm.sort_channels(keep_expansion=4) == sum(len(s) for s in wm.module.stages)
    new = block.project.weight.abs().sum(dim=(0, 2, 3))
    torch.testing.assert_close(new[:keep], torch.sort(old[:keep], descending=True).values)
    torch.testing.assert_close(new[keep:], torch.sort(old[keep:], descending=True).values)
    assert not torch.equal(new, torch.sort(old, descending=True).values)  # not one global order
    for e in (6, 4):
        torch.testing.assert_close(run(at_expansion(e)), before[e], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(run(at_expansion(3)), before[3])
