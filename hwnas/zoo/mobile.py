"""Mobile architectures: MobileNetV1/V2/V3, MnasNet-A1, EfficientNet-B0/B1,
ProxylessNAS (mobile) and Once-for-All (MobileNetV3 space) subnets.

Layer tables follow the papers; widths scale with ``width`` through the usual rounding
to multiples of 8. Every factory returns an eval-mode module with ``input_shape`` set.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from torch import nn

from hwnas.zoo.blocks import Classifier, ConvBNAct, InvertedResidual, divisible, with_input


def mobilenet_v1(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """MobileNetV1: 3x3 stem, 13 depthwise-separable blocks, classifier."""
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    c = divisible(32 * width)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2)]
    for out, s in cfg:
        o = divisible(out * width)
        layers += [ConvBNAct(c, c, 3, s, groups=c), ConvBNAct(c, o, 1)]
        c = o
    return with_input(nn.Sequential(*layers, Classifier(c, num_classes)), resolution)


def mobilenet_v2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """MobileNetV2: inverted residuals (t, c, n, s) of the paper, ReLU6."""
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    c = divisible(32 * width)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2, a="relu6")]
    for t, out, n, s in cfg:
        o = divisible(out * width)
        for i in range(n):
            layers.append(InvertedResidual(c, o, 3, s if i == 0 else 1, c * t, "relu6"))
            c = o
    last = divisible(1280 * max(1.0, width))
    layers.append(ConvBNAct(c, last, 1, a="relu6"))
    return with_input(nn.Sequential(*layers, Classifier(last, num_classes)), resolution)


_V3_LARGE = [(3, 16, 16, 0, "relu", 1), (3, 64, 24, 0, "relu", 2), (3, 72, 24, 0, "relu", 1),
             (5, 72, 40, 1, "relu", 2), (5, 120, 40, 1, "relu", 1), (5, 120, 40, 1, "relu", 1),
             (3, 240, 80, 0, "hswish", 2), (3, 200, 80, 0, "hswish", 1), (3, 184, 80, 0, "hswish", 1),
             (3, 184, 80, 0, "hswish", 1), (3, 480, 112, 1, "hswish", 1), (3, 672, 112, 1, "hswish", 1),
             (5, 672, 160, 1, "hswish", 2), (5, 960, 160, 1, "hswish", 1), (5, 960, 160, 1, "hswish", 1)]
_V3_SMALL = [(3, 16, 16, 1, "relu", 2), (3, 72, 24, 0, "relu", 2), (3, 88, 24, 0, "relu", 1),
             (5, 96, 40, 1, "hswish", 2), (5, 240, 40, 1, "hswish", 1), (5, 240, 40, 1, "hswish", 1),
             (5, 120, 48, 1, "hswish", 1), (5, 144, 48, 1, "hswish", 1), (5, 288, 96, 1, "hswish", 2),
             (5, 576, 96, 1, "hswish", 1), (5, 576, 96, 1, "hswish", 1)]


def _mobilenet_v3(cfg: Sequence[tuple], last: int, hidden: int, width: float, resolution: int,
                  num_classes: int) -> nn.Module:
    c = divisible(16 * width)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2, a="hswish")]
    for k, exp, out, se, a, s in cfg:
        mid, o = divisible(exp * width), divisible(out * width)
        layers.append(InvertedResidual(c, o, k, s, mid, a, divisible(mid / 4) if se else 0, "hsigmoid"))
        c = o
    lc = divisible(last * width)
    layers.append(ConvBNAct(c, lc, 1, a="hswish"))
    return with_input(nn.Sequential(*layers, Classifier(lc, num_classes, hidden, "hswish")), resolution)


def mobilenet_v3_large(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """MobileNetV3-Large: inverted residuals with SE and h-swish."""
    return _mobilenet_v3(_V3_LARGE, 960, 1280, width, resolution, num_classes)


def mobilenet_v3_small(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """MobileNetV3-Small."""
    return _mobilenet_v3(_V3_SMALL, 576, 1024, width, resolution, num_classes)


def mnasnet_a1(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """MnasNet-A1: separable stem, inverted residuals, SE (ReLU / sigmoid, 1/4 of the input width)."""
    cfg = [(6, 3, 24, 2, 2, 0), (3, 5, 40, 3, 2, 1), (6, 3, 80, 4, 2, 0), (6, 3, 112, 2, 1, 1),
           (6, 5, 160, 3, 2, 1), (6, 3, 320, 1, 1, 0)]
    c, first = divisible(32 * width), divisible(16 * width)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2), ConvBNAct(c, c, 3, 1, groups=c),
                               ConvBNAct(c, first, 1, a="none")]
    c = first
    for t, k, out, n, s, se in cfg:
        o = divisible(out * width)
        for i in range(n):
            layers.append(InvertedResidual(c, o, k, s if i == 0 else 1, c * t, "relu",
                                           max(1, c // 4) if se else 0, "sigmoid"))
            c = o
    layers.append(ConvBNAct(c, 1280, 1))
    return with_input(nn.Sequential(*layers, Classifier(1280, num_classes)), resolution)


def efficientnet(width: float = 1.0, depth: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """EfficientNet (B0 at width=depth=1, 224): MBConv with swish and SE (sigmoid gate)."""
    cfg = [(1, 3, 16, 1, 1), (6, 3, 24, 2, 2), (6, 5, 40, 2, 2), (6, 3, 80, 3, 2), (6, 5, 112, 3, 1),
           (6, 5, 192, 4, 2), (6, 3, 320, 1, 1)]
    c = divisible(32 * width)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2, a="swish")]
    for t, k, out, n, s in cfg:
        o = divisible(out * width)
        for i in range(int(math.ceil(n * depth))):
            layers.append(InvertedResidual(c, o, k, s if i == 0 else 1, c * t, "swish", max(1, c // 4), "sigmoid"))
            c = o
    last = divisible(1280 * width)
    layers.append(ConvBNAct(c, last, 1, a="swish"))
    return with_input(nn.Sequential(*layers, Classifier(last, num_classes)), resolution)


def efficientnet_b0(resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    return efficientnet(1.0, 1.0, resolution, num_classes)


def efficientnet_b1(resolution: int = 240, num_classes: int = 1000) -> nn.Module:
    return efficientnet(1.0, 1.1, resolution, num_classes)


#: ProxylessNAS-Mobile as published (expand, kernel, width, stride) per block, after the
#: 3x3 stem (32) and the first separable block (16).
_PROXYLESS = [(3, 5, 32, 2), (3, 3, 32, 1), (3, 7, 40, 2), (3, 3, 40, 1), (3, 5, 40, 1), (3, 5, 40, 1),
              (6, 7, 80, 2), (3, 5, 80, 1), (3, 5, 80, 1), (3, 5, 80, 1), (6, 5, 96, 1), (3, 5, 96, 1),
              (3, 5, 96, 1), (3, 5, 96, 1), (6, 7, 192, 2), (6, 7, 192, 1), (3, 7, 192, 1), (3, 7, 192, 1),
              (6, 7, 320, 1)]


def _mb_chain(blocks: Sequence[tuple[int, int, int, int]], width: float, resolution: int, num_classes: int,
              a: str = "relu6", stem: int = 32, first: int = 16, last: int = 1280) -> nn.Module:
    c, f = divisible(stem * width), divisible(first * width)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2, a=a), InvertedResidual(c, f, 3, 1, c, a)]
    c = f
    for t, k, out, s in blocks:
        o = divisible(out * width)
        layers.append(InvertedResidual(c, o, k, s, c * t, a))
        c = o
    lc = divisible(last * max(1.0, width))
    layers.append(ConvBNAct(c, lc, 1, a=a))
    return with_input(nn.Sequential(*layers, Classifier(lc, num_classes)), resolution)


def proxyless_mobile(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """ProxylessNAS-Mobile (ReLU6 inverted residuals of searched kernel and expansion)."""
    return _mb_chain(_PROXYLESS, width, resolution, num_classes)


def ofa_subnet(seed: int = 0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """A Once-for-All subnet of the MobileNetV3 space: per stage depth 2-4, per block kernel
    3/5/7 and expansion 3/4/6, drawn from ``seed``; SE and h-swish where MobileNetV3 has them."""
    rng = np.random.default_rng(seed)
    stages = [(24, 2, "relu", 0), (40, 2, "relu", 1), (80, 2, "hswish", 0), (112, 1, "hswish", 1),
              (160, 2, "hswish", 1)]
    c = 16
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, 2, a="hswish"), InvertedResidual(c, c, 3, 1, c, "relu")]
    for out, s, a, se in stages:
        for i in range(int(rng.integers(2, 5))):
            k, e = int(rng.choice([3, 5, 7])), int(rng.choice([3, 4, 6]))
            mid = c * e
            layers.append(InvertedResidual(c, out, k, s if i == 0 else 1, mid, a, divisible(mid / 4) if se else 0))
            c = out
    layers.append(ConvBNAct(c, 960, 1, a="hswish"))
    return with_input(nn.Sequential(*layers, Classifier(960, num_classes, 1280, "hswish")), resolution)
