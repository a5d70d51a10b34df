"""The mbv3 space (OFA-MobileNetV3): strict architecture strings, documented option
domains, OFA's layout (the largest subnet's size against an independent count of OFA's
reference layer table), and the network's primitives as the profilers build them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.config import build_space
from hwnas.errors import ConfigError, ValidationError
from hwnas.nn.builders import build_network
from hwnas.search.spaces.mbv2 import make_divisible
from hwnas.search.spaces.mbv3 import MBV3Space


def _small() -> MBV3Space:
    return MBV3Space(resolutions=[32, 24], width=0.25, num_classes=10, depths=[1, 2], kernels=[3, 5])


def test_arch_strings_round_trip_and_drop_inactive_choices() -> None:
    space = MBV3Space(resolutions=[160, 224])
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        text = space.to_str(arch)
        assert text.isascii() and text.startswith(("r160|", "r224|")) and text.count("|") == 5
        back = space.from_str(text)
        assert space.canonical(back) == space.canonical(arch)
        assert space.to_network(back).hash == space.to_network(arch).hash
    largest = space.from_str("r224|" + "|".join(["d4:" + ",".join(["e6k7"] * 4)] * 5))
    assert space.resolution_of(largest) == 224 and space.stage_choices(largest)[4] == [(6, 7)] * 4


@pytest.mark.parametrize("bad", [
    "d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3",       # no resolution
    "r224|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3",   # resolution not offered
    "r160|d3:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3",   # depth says 3, two blocks
    "r160|s2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3",   # another space's prefix
    "r160|d2:e3k3,e3k9|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3",   # kernel not offered
    "r\u0661\u0666\u0660|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3",  # Arabic-Indic digits
    "r160|d2:e3k3,e3k3",                                                        # too few stages
])
def test_malformed_arch_strings_are_refused_in_one_line(bad: str) -> None:
    space = MBV3Space(resolutions=[160])
    with pytest.raises(ValidationError) as err:
        space.from_str(bad)
    assert "mbv3" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("options,option", [
    ({"width": 0}, "width"), ({"width": 5}, "width"), ({"resolutions": []}, "resolutions"),
    ({"resolutions": [224, 224]}, "resolutions"), ({"resolutions": [4096]}, "resolutions"),
    ({"kernels": [3, 4]}, "kernels"), ({"depths": [2, 9]}, "depths"), ({"num_classes": 1}, "num_classes"),
])
def test_options_outside_their_domain_are_refused_naming_the_option(options: dict, option: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_space("mbv3", options)
    msg = str(err.value)
    assert option in msg and "\n" not in msg


def test_layout_follows_ofa_mobilenetv3() -> None:
    """Widths, strides, SE and activations per stage; head and tail as OFA builds them."""
    space = MBV3Space(resolutions=[224])
    net = space.to_network(space.from_str("r224|" + "|".join(["d2:e4k5,e4k5"] * 5)))
    stem, first, *blocks = net.nodes[:12]
    assert (stem.op, stem.c_out, stem.stride, stem.act, stem.kernel) == ("conv", 16, 2, "hswish", 3)
    assert (first.op, first.c_out, first.expansion, first.act, first.se) == ("mbconv", 16, 1, "relu", False)
    firsts = blocks[0::2]
    assert [b.c_out for b in firsts] == [24, 40, 80, 112, 160]
    assert [b.stride for b in firsts] == [2, 2, 2, 1, 2]
    assert [b.h for b in firsts] == [112, 56, 28, 14, 14]
    assert [b.se for b in firsts] == [False, True, False, True, True]
    assert [b.act for b in firsts] == ["relu", "relu", "hswish", "hswish", "hswish"]
    final, pool, mix, classifier = net.nodes[-4:]
    assert (final.op, final.c_in, final.c_out, final.h, final.act) == ("conv", 160, 960, 7, "hswish")
    assert pool.extra("mode") == "global"
    assert (mix.op, mix.c_in, mix.c_out, mix.act) == ("fc", 960, 1280, "hswish")
    assert (classifier.c_in, classifier.c_out, classifier.act) == (1280, 1000, "none")
    wide = MBV3Space(resolutions=[224], width=1.2)
    assert (wide.c_stem, wide.c_stages, wide.c_final, wide.c_mix) == (24, [32, 48, 96, 136, 192], 1152, 1536)


def _ofa_reference_counts(resolution: int = 224, classes: int = 1000) -> tuple[int, int]:
    """Parameters and conv/linear MACs of OFA-MobileNetV3 w1.0's largest subnet (depth 4,
    e6, k7), counted from the layer table of OFA's reference code (``OFAMobileNetV3`` in
    mit-han-lab/once-for-all, ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py):
    written out independently of the space, layer by layer."""
    params = macs = 0

    def conv(c_in: int, c_out: int, k: int, hw: int, groups: int = 1, bn: bool = True, bias: bool = False) -> None:
        nonlocal params, macs
        params += c_in // groups * k * k * c_out + (2 * c_out if bn else 0) + (c_out if bias else 0)
        macs += hw * hw * c_out * (c_in // groups) * k * k

    r = resolution // 2
    conv(3, 16, 3, r)                       # first conv, stride 2
    conv(16, 16, 3, r, groups=16)           # first block: depthwise, then pointwise
    conv(16, 16, 1, r)
    c = 16
    for width, stride, se in ((24, 2, 0), (40, 2, 1), (80, 2, 0), (112, 1, 1), (160, 2, 1)):
        for i in range(4):
            mid = c * 6
            conv(c, mid, 1, r)
            r = r // (stride if i == 0 else 1)
            conv(mid, mid, 7, r, groups=mid)
            if se:
                red = make_divisible(mid // 4, 8)
                conv(mid, red, 1, 1, bn=False, bias=True)
                conv(red, mid, 1, 1, bn=False, bias=True)
            conv(mid, width, 1, r)
            c = width
    conv(160, 960, 1, r)                    # final expand layer
    params += 960 * 1280                    # feature mix: 1x1 conv without bias or BN
    macs += 960 * 1280
    params += 1280 * classes + classes      # classifier
    macs += 1280 * classes
    return params, macs


def _macs(model: nn.Module, x: torch.Tensor) -> int:
    total = 0

    def hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += out[0].numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


@pytest.mark.timeout(60)
def test_largest_subnet_matches_ofa_reference_size() -> None:
    """OFA-MBv3 w1.0 largest at 224: 7,664,760 parameters and 566,170,656 conv/linear MACs by
    the reference layer table. Ours differs only by the feature mix layer's bias (1280
    parameters, since the space's ``fc`` primitive has one): tolerance 0.05% on
    parameters, exact MACs."""
    space = MBV3Space(resolutions=[224])
    arch = space.from_str("r224|" + "|".join(["d4:" + ",".join(["e6k7"] * 4)] * 5))
    model = build_network(space.to_network(arch))
    ref_params, ref_macs = _ofa_reference_counts()
    params = sum(p.numel() for p in model.parameters())
    assert params == ref_params + 1280
    assert abs(params - ref_params) / ref_params < 5e-4
    assert _macs(model, torch.randn(1, 3, 224, 224)) == ref_macs


def test_every_node_builds_and_the_network_runs_at_each_resolution() -> None:
    space = _small()
    prims = {p.key for p in space.primitives()}
    rng = np.random.default_rng(3)
    for _ in range(3):
        arch = space.sample(rng)
        spec = space.to_network(arch)
        assert {p.key for p in spec.nodes} <= prims
        r = space.resolution_of(arch)
        with torch.no_grad():
            out = build_network(spec)(torch.randn(2, 3, r, r))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
    # Both resolutions' primitives are announced (a profiled table covers the space).
    assert {p.h for p in space.primitives() if p.op == "conv" and p.kernel == 3} == {32, 24}
