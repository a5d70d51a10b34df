"""Classic and cell architectures: ResNet, VGG, SqueezeNet, DenseNet, ShuffleNetV2 and
NAS-Bench-201 networks. Layer tables follow the papers; see blocks.py for the blocks."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from hwnas.zoo.blocks import (
    BasicBlock,
    Bottleneck,
    Classifier,
    ConvBNAct,
    DenseLayer,
    Fire,
    NB201Cell,
    ShuffleUnit,
    transition,
    with_input,
)


def _resnet_stem(c: int = 64) -> list[nn.Module]:
    return [ConvBNAct(3, c, 7, 2), nn.MaxPool2d(3, 2, 1)]


def resnet(depth: int = 18, resolution: int = 224, num_classes: int = 1000, width: float = 1.0) -> nn.Module:
    """ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks)."""
    reps = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}[depth]
    base = int(64 * width)
    layers = _resnet_stem(base)
    c = base
    for i, n in enumerate(reps):
        mid = base * 2 ** i
        out = mid * 4 if depth == 50 else mid
        for j in range(n):
            s = 2 if j == 0 and i > 0 else 1
            layers.append(Bottleneck(c, mid, out, s) if depth == 50 else BasicBlock(c, out, s))
            c = out
    return with_input(nn.Sequential(*layers, Classifier(c, num_classes)), resolution)


def resnet18(resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    return resnet(18, resolution, num_classes)


def resnet34(resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    return resnet(34, resolution, num_classes)


def resnet50(resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    return resnet(50, resolution, num_classes)


_VGG = {11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}


def vgg(depth: int = 11, batch_norm: bool = True, resolution: int = 224, num_classes: int = 1000,
        width: float = 1.0) -> nn.Module:
    """VGG-11/16 with global pooling before a 4096-4096 classifier (as for any resolution)."""
    layers: list[nn.Module] = []
    c = 3
    for v in _VGG[depth]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        o = int(int(v) * width)
        layers += [nn.Conv2d(c, o, 3, 1, 1, bias=not batch_norm)] + ([nn.BatchNorm2d(o)] if batch_norm else []) + \
            [nn.ReLU()]
        c = o
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes)]
    return with_input(nn.Sequential(*layers, *head), resolution)


def squeezenet(version: str = "1_1", resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """SqueezeNet 1.0 / 1.1: fire modules, max pools, 1x1 conv classifier."""
    fires = [(16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192), (64, 256), "M", (64, 256)]
    if version == "1_0":
        layers: list[nn.Module] = [nn.Conv2d(3, 96, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True)]
        c = 96
    else:
        layers = [nn.Conv2d(3, 64, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True)]
        c = 64
        fires = [(16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192), (64, 256), (64, 256)]
    for f in fires:
        if f == "M":
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            continue
        sq, e = f  # type: ignore[misc]
        layers.append(Fire(c, sq, e, e))
        c = 2 * e
    head = [nn.Conv2d(c, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return with_input(nn.Sequential(*layers, *head), resolution)


def densenet(blocks: Sequence[int] = (6, 12, 24, 16), growth: int = 32, init: int = 64, resolution: int = 224,
             num_classes: int = 1000) -> nn.Module:
    """DenseNet-BC (DenseNet-121 by default): dense blocks of BN-ReLU-conv layers, transitions."""
    layers: list[nn.Module] = [ConvBNAct(3, init, 7, 2), nn.MaxPool2d(3, 2, 1)]
    c = init
    for i, n in enumerate(blocks):
        for _ in range(n):
            layers.append(DenseLayer(c, growth))
            c += growth
        if i < len(blocks) - 1:
            layers.append(transition(c, c // 2))
            c //= 2
    layers += [nn.BatchNorm2d(c), nn.ReLU()]
    return with_input(nn.Sequential(*layers, Classifier(c, num_classes)), resolution)


_SHUFFLE = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024),
            2.0: (244, 488, 976, 2048)}


def shufflenet_v2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """ShuffleNetV2 x0.5/1.0/1.5/2.0: stages of 4, 8, 4 units."""
    widths = _SHUFFLE[width]
    layers: list[nn.Module] = [ConvBNAct(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
    c = 24
    for out, n in zip(widths[:3], (4, 8, 4)):
        for i in range(n):
            layers.append(ShuffleUnit(c, out, 2 if i == 0 else 1))
            c = out
    layers.append(ConvBNAct(c, widths[3], 1))
    return with_input(nn.Sequential(*layers, Classifier(widths[3], num_classes)), resolution)


class _NB201ResBlock(nn.Module):
    """The residual block between NAS-Bench-201 stages (stride 2, doubles the width)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out))
        self.b = nn.Sequential(nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.b(self.a(x)) + self.down(x)


def nb201(arch: str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                      "nor_conv_3x3~2|", channels: int = 16, cells: int = 5, resolution: int = 32,
          num_classes: int = 10) -> nn.Module:
    """A NAS-Bench-201 network: stem, 3 stages of ``cells`` cells, residual blocks between."""
    ops = [tok.split("~")[0] for part in arch.strip("|").split("|+|") for tok in part.split("|") if tok]
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels)]
    c = channels
    for stage in range(3):
        if stage:
            layers.append(_NB201ResBlock(c, 2 * c))
            c *= 2
        layers += [NB201Cell(c, ops) for _ in range(cells)]
    layers += [nn.BatchNorm2d(c), nn.ReLU()]
    return with_input(nn.Sequential(*layers, Classifier(c, num_classes)), resolution)
