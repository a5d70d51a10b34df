"""Building blocks of the model zoo (and of the kernel job's random networks).

Written here from the published architectures (torchvision's registry wheel does not
load with the CPU torch this project pins). Each block is the reference structure:
convolution + BN + activation units, MobileNetV2/V3 inverted residuals with optional
squeeze-excite, ResNet basic and bottleneck blocks, ShuffleNetV2 units, DenseNet layers,
SqueezeNet fire modules and NAS-Bench-201 cells.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "swish": nn.SiLU, "sigmoid": nn.Sigmoid,
        "hsigmoid": nn.Hardsigmoid, "tanh": nn.Tanh, "leakyrelu": nn.LeakyReLU, "none": nn.Identity}


def act(name: str) -> nn.Module:
    return ACTS[name]()


def divisible(v: float, d: int = 8) -> int:
    """Round a width to a multiple of ``d`` (never below 90% of ``v``), as MobileNets do."""
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class ConvBNAct(nn.Sequential):
    """kxk convolution (no bias) + BN + activation."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1, a: str = "relu",
                 padding: int | None = None) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, k, stride, k // 2 if padding is None else padding, groups=groups,
                                   bias=False), nn.BatchNorm2d(c_out), act(a))


class SqueezeExcite(nn.Module):
    """Global pool, reduce, activation, expand, gate; scales the input channels."""

    def __init__(self, c: int, mid: int, a: str = "relu", gate: str = "hsigmoid") -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(c, mid, 1)
        self.act = act(a)
        self.expand = nn.Conv2d(mid, c, 1)
        self.gate = act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3, MnasNet, EfficientNet and ProxylessNAS block: expand 1x1 to ``mid``
    (skipped when ``mid == c_in``), depthwise kxk, optional SE (``se_mid`` > 0 channels,
    ``se_gate`` activation), project 1x1; residual when shapes allow."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, mid: int, a: str = "relu6",
                 se_mid: int = 0, se_gate: str = "hsigmoid") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if mid != c_in:
            layers.append(ConvBNAct(c_in, mid, 1, a=a))
        layers.append(ConvBNAct(mid, mid, k, stride, groups=mid, a=a))
        if se_mid > 0:
            layers.append(SqueezeExcite(mid, se_mid, "swish" if a == "swish" else "relu", se_gate))
        layers += [nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.a = ConvBNAct(c_in, c_out, 3, stride)
        self.b = ConvBNAct(c_out, c_out, 3, a="none")
        self.down = ConvBNAct(c_in, c_out, 1, stride, a="none") if stride != 1 or c_in != c_out else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.b(self.a(x)) + self.down(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 reduce, 3x3 with optional groups, 1x1 expand) + shortcut."""

    def __init__(self, c_in: int, mid: int, c_out: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(c_in, mid, 1), ConvBNAct(mid, mid, 3, stride, groups=groups),
                                  ConvBNAct(mid, c_out, 1, a="none"))
        self.down = ConvBNAct(c_in, c_out, 1, stride, a="none") if stride != 1 or c_in != c_out else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.down(x))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: channel split (stride 1) or two branches (stride 2), concat, shuffle."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = c_out // 2
        b_in = c_in if stride > 1 else c_in // 2
        self.branch2 = nn.Sequential(ConvBNAct(b_in, half, 1), ConvBNAct(half, half, 3, stride, groups=half, a="none"),
                                     ConvBNAct(half, half, 1))
        self.branch1 = nn.Sequential(ConvBNAct(c_in, c_in, 3, stride, groups=c_in, a="none"),
                                     ConvBNAct(c_in, half, 1)) if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.branch2(b)], 1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return channel_shuffle(out, 2)


class DenseLayer(nn.Module):
    """DenseNet-BC layer: BN-ReLU-conv1x1 (4k) BN-ReLU-conv3x3 (k), concatenated to the input."""

    def __init__(self, c_in: int, growth: int, bn_size: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, bn_size * growth, 1, bias=False),
                                  nn.BatchNorm2d(bn_size * growth), nn.ReLU(),
                                  nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def transition(c_in: int, c_out: int) -> nn.Sequential:
    """DenseNet transition: BN-ReLU-conv1x1, 2x2 average pool."""
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.AvgPool2d(2, 2))


class Fire(nn.Module):
    """SqueezeNet fire module: squeeze 1x1, expand 1x1 and 3x3, concatenated."""

    def __init__(self, c_in: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c_in, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, e1, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class NB201Cell(nn.Module):
    """NAS-Bench-201 cell: 4 nodes, each the sum of ops on all earlier nodes (ReLU-Conv-BN
    edges, 3x3 average pool, skip, zero). ``ops`` lists the 6 edges in the benchmark's order
    (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""

    def __init__(self, c: int, ops: Sequence[str]) -> None:
        super().__init__()
        self.ops = list(ops)
        self.edges = nn.ModuleList(self._edge(c, o) for o in ops)

    @staticmethod
    def _edge(c: int, op: str) -> nn.Module:
        if op == "nor_conv_1x1":
            return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
        if op == "nor_conv_3x3":
            return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        if op == "avg_pool_3x3":
            return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        return nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for j in range(1, 4):
            terms = []
            for i in range(j):
                if self.ops[e] != "none":
                    terms.append(self.edges[e](nodes[i]))
                e += 1
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[-1]


class Classifier(nn.Sequential):
    """Global average pool, flatten, optional dropout-free hidden layer, linear."""

    def __init__(self, c: int, classes: int, hidden: int = 0, a: str = "hswish") -> None:
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden:
            layers += [nn.Linear(c, hidden), act(a)]
            c = hidden
        layers.append(nn.Linear(c, classes))
        super().__init__(*layers)


def with_input(model: nn.Module, resolution: int, channels: int = 3) -> nn.Module:
    """Set the (N, C, H, W) the model is exported and measured with; returns it in eval mode."""
    model.input_shape = (1, channels, resolution, resolution)  # type: ignore[attr-defined]
    return model.eval()
