"""The model zoo: at least 30 registered variants across the families the issue lists, every
factory builds a module that runs (at small sizes here, to stay fast)."""
from __future__ import annotations

import pytest
import torch

from hwnas import registry, zoo

SMALL = {
    "mobilenet_v1": {"width": 0.25, "resolution": 32}, "mobilenet_v2": {"width": 0.25, "resolution": 32},
    "mobilenet_v3_large": {"width": 0.35, "resolution": 32}, "mobilenet_v3_small": {"width": 0.35, "resolution": 32},
    "mnasnet_a1": {"width": 0.25, "resolution": 32}, "efficientnet_b0": {"resolution": 32},
    "efficientnet_b1": {"resolution": 32}, "proxyless_mobile": {"width": 0.25, "resolution": 32},
    "ofa_subnet": {"seed": 3, "resolution": 32}, "ofa_mbv3": {"arch": "mid", "width": 0.25, "resolution": 32}, "resnet18": {"resolution": 32}, "resnet34": {"resolution": 32},
    "resnet50": {"resolution": 32}, "shufflenet_v2": {"width": 0.5, "resolution": 32},
    "squeezenet": {"resolution": 64}, "vgg": {"depth": 11, "resolution": 32, "width": 0.125},
    "densenet": {"blocks": (2, 2, 2, 2), "resolution": 32}, "nb201": {"cells": 1, "channels": 8},
}


def test_zoo_has_30_variants_across_families() -> None:
    entries = registry.list("zoo")
    assert len(entries) >= 30
    families = {e.obj.family for e in entries}
    assert {"MobileNetV1", "MobileNetV2", "MobileNetV3", "ResNet", "ShuffleNetV2", "MnasNet", "SqueezeNet", "VGG",
            "DenseNet", "EfficientNet", "ProxylessNAS", "OFA", "NB201"} <= families
    assert all(e.obj.spec.startswith("hwnas.zoo:") and e.summary for e in entries)
    # transformer/hybrid factories run in tests/zoo/test_modern_zoo.py
    modern = {e.obj.factory for e in entries
              if getattr(zoo, e.obj.factory).__module__ in ("hwnas.zoo.transformers", "hwnas.zoo.modern", "hwnas.zoo.levit")}
    assert len(modern) >= 7 and {e.obj.factory for e in entries} - modern <= set(SMALL)


@pytest.mark.parametrize("factory", sorted(SMALL))
def test_factory_builds_and_runs(factory: str) -> None:
    model = getattr(zoo, factory)(**SMALL[factory])
    assert not model.training
    n, c, h, w = model.input_shape
    with torch.no_grad():
        out = model(torch.randn(n, c, h, w))
    assert out.shape[0] == 1 and out.ndim == 2 and torch.isfinite(out).all()
