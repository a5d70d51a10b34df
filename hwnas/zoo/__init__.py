"""A model zoo written here: ≥ 30 definitions across families (convolutional, mobile,
transformer and hybrid: transformers.py, modern.py, levit.py), widths and resolutions,
for measuring how well kernel predictors do on models they never saw.

Every factory returns an eval-mode torch module with ``input_shape`` set, so
``hwnas profile --torch hwnas.zoo:mobilenet_v2`` works. The named variants (role ``zoo``
in the registry: ``hwnas registry zoo``) are what ``bench/any_model.py`` measures. The
kernel job never trains on these models; it draws random networks of its own.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from hwnas import registry
from hwnas.zoo.classic import densenet, nb201, resnet, resnet18, resnet34, resnet50, shufflenet_v2, squeezenet, vgg
from hwnas.zoo.levit import levit
from hwnas.zoo.mobile import (
    efficientnet,
    efficientnet_b0,
    efficientnet_b1,
    mnasnet_a1,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3_large,
    mobilenet_v3_small,
    ofa_subnet,
    proxyless_mobile,
)
from hwnas.zoo.modern import convnext_t, efficientformer_l1, mobilevit
from hwnas.zoo.ofa import ofa_mbv3
from hwnas.zoo.transformers import deit_small, deit_tiny, swin_t, vit, vit_small, vit_tiny

__all__ = ["ZooEntry", "convnext_t", "deit_small", "deit_tiny", "densenet", "efficientformer_l1", "efficientnet",
           "efficientnet_b0", "efficientnet_b1", "levit", "mnasnet_a1", "mobilenet_v1", "mobilenet_v2",
           "mobilenet_v3_large", "mobilenet_v3_small", "mobilevit", "nb201", "ofa_mbv3", "ofa_subnet", "proxyless_mobile",
           "resnet", "resnet18", "resnet34", "resnet50", "shufflenet_v2", "squeezenet", "swin_t", "vgg", "vit",
           "vit_small", "vit_tiny"]


@dataclass
class ZooEntry:
    """One zoo model: a factory in this package and its keyword options."""

    family: str
    factory: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        """The ``--torch`` form of this model's factory."""
        return f"hwnas.zoo:{self.factory}"

    def build(self) -> Any:
        return getattr(importlib.import_module("hwnas.zoo"), self.factory)(**self.options)


_NB201_ARCHS = {
    "conv3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "mixed": "|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
    "light": "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|",
}

#: name -> (family, factory, options). Names say width (w) and input resolution (r).
_VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    **{f"mobilenet_v1-w{w}-r{r}": ("MobileNetV1", "mobilenet_v1", {"width": w, "resolution": r})
       for w, r in ((1.0, 224), (0.75, 192), (0.5, 160))},
    **{f"mobilenet_v2-w{w}-r{r}": ("MobileNetV2", "mobilenet_v2", {"width": w, "resolution": r})
       for w, r in ((1.0, 224), (1.4, 224), (0.75, 192), (0.5, 160), (1.0, 128))},
    **{f"mobilenet_v3_large-w{w}-r{r}": ("MobileNetV3", "mobilenet_v3_large", {"width": w, "resolution": r})
       for w, r in ((1.0, 224), (0.75, 224))},
    **{f"mobilenet_v3_small-w{w}-r{r}": ("MobileNetV3", "mobilenet_v3_small", {"width": w, "resolution": r})
       for w, r in ((1.0, 224), (0.75, 160))},
    **{f"mnasnet_a1-w{w}-r224": ("MnasNet", "mnasnet_a1", {"width": w}) for w in (1.0, 0.5)},
    "efficientnet_b0-r224": ("EfficientNet", "efficientnet_b0", {}),
    "efficientnet_b1-r240": ("EfficientNet", "efficientnet_b1", {}),
    "proxyless_mobile-w1.0-r224": ("ProxylessNAS", "proxyless_mobile", {}),
    "proxyless_mobile-w0.75-r192": ("ProxylessNAS", "proxyless_mobile", {"width": 0.75, "resolution": 192}),
    "ofa_subnet-s1-r224": ("OFA", "ofa_subnet", {"seed": 1}),
    "ofa_subnet-s2-r192": ("OFA", "ofa_subnet", {"seed": 2, "resolution": 192}),
    **{f"ofa_mbv3_{a}-w1.0-r224": ("OFA", "ofa_mbv3", {"arch": a}) for a in ("max", "mid", "min")},
    "resnet18-r224": ("ResNet", "resnet18", {}),
    "resnet18-r160": ("ResNet", "resnet18", {"resolution": 160}),
    "resnet34-r224": ("ResNet", "resnet34", {}),
    "resnet50-r224": ("ResNet", "resnet50", {}),
    **{f"shufflenet_v2-w{w}-r224": ("ShuffleNetV2", "shufflenet_v2", {"width": w}) for w in (0.5, 1.0, 1.5, 2.0)},
    "squeezenet1_0-r224": ("SqueezeNet", "squeezenet", {"version": "1_0"}),
    "squeezenet1_1-r224": ("SqueezeNet", "squeezenet", {"version": "1_1"}),
    "vgg11_bn-r224": ("VGG", "vgg", {"depth": 11}),
    "vgg16-r160": ("VGG", "vgg", {"depth": 16, "batch_norm": False, "resolution": 160}),
    "densenet121-r224": ("DenseNet", "densenet", {}),
    "densenet121-r160": ("DenseNet", "densenet", {"resolution": 160}),
    **{f"nb201_{k}-c16-r32": ("NB201", "nb201", {"arch": a}) for k, a in _NB201_ARCHS.items()},
    # Transformer and modern families (transformers.py, modern.py, levit.py); each <= ~250 ms
    # on one CPU thread under ONNX Runtime, with smaller widths / resolutions beside the full ones.
    "vit_tiny-r224": ("ViT", "vit_tiny", {}),
    "vit_tiny-r160": ("ViT", "vit_tiny", {"resolution": 160}),
    "vit_small-r224": ("ViT", "vit_small", {}),
    "deit_tiny-r224": ("DeiT", "deit_tiny", {}),
    "deit_small-r224": ("DeiT", "deit_small", {}),
    "swin_t-w1.0-r224": ("Swin", "swin_t", {}),
    "swin_t-w0.5-r224": ("Swin", "swin_t", {"width": 0.5}),
    "swin_t-w0.75-r192": ("Swin", "swin_t", {"width": 0.75, "resolution": 192, "window": 6}),
    "convnext_t-w1.0-r224": ("ConvNeXt", "convnext_t", {}),
    "convnext_t-w0.5-r224": ("ConvNeXt", "convnext_t", {"width": 0.5}),
    "convnext_t-w1.0-r160": ("ConvNeXt", "convnext_t", {"resolution": 160}),
    **{f"mobilevit_{s}-r256": ("MobileViT", "mobilevit", {"size": s}) for s in ("xxs", "xs", "s")},
    "efficientformer_l1-w1.0-r224": ("EfficientFormer", "efficientformer_l1", {}),
    "efficientformer_l1-w0.5-r224": ("EfficientFormer", "efficientformer_l1", {"width": 0.5}),
    "efficientformer_l1-w1.0-r160": ("EfficientFormer", "efficientformer_l1", {"resolution": 160}),
    "levit_128s-r224": ("LeViT", "levit", {}),
    "levit_128-r224": ("LeViT", "levit", {"size": "128"}),
    "levit_128s-r160": ("LeViT", "levit", {"resolution": 160}),
}

for _name, (_family, _factory, _opts) in _VARIANTS.items():
    _entry = ZooEntry(_family, _factory, dict(_opts))
    _entry.__doc__ = f"{_family}: {_factory}({', '.join(f'{k}={v!r}' for k, v in _opts.items() if k != 'arch')})"
    registry.register("zoo", _name)(_entry)
