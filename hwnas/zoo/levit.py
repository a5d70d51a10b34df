"""LeViT-like models (LeViT-128S, LeViT-128): a convolutional stem, then attention stages on
token maps of decreasing resolution.

Layout facts taken from the reference code (facebookresearch/LeViT), the code written here:
stem of four 3x3 stride-2 conv-BN layers (C/8, C/4, C/2, C) with hard-swish between them
(224 -> 14x14 tokens); every projection is "Linear-BN" (a bias-free Linear followed by BatchNorm
over the channels); attention with key dim D = 16, values of 2*D per head (ratio 2 inside
stages, 4 in the shrinking attention), hard-swish on the attention output before the output
projection, and a learned bias per head and absolute (|dy|, |dx|) offset; MLP blocks Linear-BN,
hard-swish, Linear-BN of ratio 2, all residual; between stages a shrinking attention block whose
queries come from the map subsampled by 2 (no residual) followed by a residual MLP; head: mean
over tokens, BN + Linear for the class and the distillation heads, averaged at evaluation.
Widths C = (128, 256, 384); LeViT-128S: heads (4, 6, 8), depths (2, 3, 4); LeViT-128: heads
(4, 8, 12), depths (4, 4, 4); the shrinking attention has C_in / D heads.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.zoo.attention import absolute_offsets
from hwnas.zoo.blocks import ConvBNAct, with_input


class LinearBN(nn.Module):
    """Bias-free Linear on tokens (B, N, C) followed by BatchNorm over the output channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(c_in, c_out, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class Residual(nn.Module):
    """x + f(x)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def levit_mlp(dim: int, ratio: int = 2) -> nn.Module:
    """LeViT's residual MLP: Linear-BN, hard-swish, Linear-BN."""
    return Residual(nn.Sequential(LinearBN(dim, ratio * dim), nn.Hardswish(), LinearBN(ratio * dim, dim)))


class LeViTAttention(nn.Module):
    """Attention on a ``size``² token map; with ``stride`` 2 the queries come from the map
    subsampled by 2 and the output has the smaller map's tokens (and ``c_out`` channels)."""

    def __init__(self, c_in: int, c_out: int, size: int, heads: int, key_dim: int = 16, ratio: int = 2,
                 stride: int = 1) -> None:
        super().__init__()
        self.size, self.stride, self.heads, self.key_dim, self.d = size, stride, heads, key_dim, ratio * key_dim
        self.scale = key_dim ** -0.5
        if stride == 1:
            self.qkv = LinearBN(c_in, heads * (2 * key_dim + self.d))
        else:
            self.kv = LinearBN(c_in, heads * (key_dim + self.d))
            self.q = LinearBN(c_in, heads * key_dim)
        self.proj = nn.Sequential(nn.Hardswish(), LinearBN(heads * self.d, c_out))
        index, offsets = absolute_offsets(size, stride)
        self.biases = nn.Parameter(torch.zeros(heads, offsets))
        self.register_buffer("bias_index", index, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if self.stride == 1:
            q, k, v = self.qkv(x).view(b, n, self.heads, -1).permute(0, 2, 1, 3).split(
                [self.key_dim, self.key_dim, self.d], dim=3)
        else:
            k, v = self.kv(x).view(b, n, self.heads, -1).permute(0, 2, 1, 3).split([self.key_dim, self.d], dim=3)
            sub = x.view(b, self.size, self.size, c)[:, ::self.stride, ::self.stride].reshape(b, -1, c)
            q = self.q(sub).view(b, -1, self.heads, self.key_dim).permute(0, 2, 1, 3)
        attn = ((q @ k.transpose(-2, -1)) * self.scale + self.biases[:, self.bias_index]).softmax(-1)
        y = (attn @ v).transpose(1, 2)
        return self.proj(y.reshape(b, y.shape[1], self.heads * self.d))


class BNLinear(nn.Sequential):
    """LeViT's head: BatchNorm over the pooled features, then Linear."""

    def __init__(self, c: int, classes: int) -> None:
        super().__init__(nn.BatchNorm1d(c), nn.Linear(c, classes))


class LeViT(nn.Module):
    """Conv stem, token stages of attention + MLP blocks with shrinking attention between, two heads."""

    def __init__(self, dims: tuple[int, ...], heads: tuple[int, ...], depths: tuple[int, ...], resolution: int,
                 num_classes: int = 1000, key_dim: int = 16) -> None:
        super().__init__()
        if resolution % 16:
            raise ConfigError(f"LeViT resolution {resolution} must be a multiple of 16")
        c = dims[0]
        self.stem = nn.Sequential(ConvBNAct(3, c // 8, 3, 2, a="hswish"), ConvBNAct(c // 8, c // 4, 3, 2, a="hswish"),
                                  ConvBNAct(c // 4, c // 2, 3, 2, a="hswish"), ConvBNAct(c // 2, c, 3, 2, a="none"))
        size, layers = resolution // 16, []
        for i, (dim, h, n) in enumerate(zip(dims, heads, depths)):
            if i:
                layers += [LeViTAttention(dims[i - 1], dim, size, dims[i - 1] // key_dim, key_dim, 4, stride=2),
                           levit_mlp(dim)]
                size = (size - 1) // 2 + 1
            for _ in range(n):
                layers += [Residual(LeViTAttention(dim, dim, size, h, key_dim)), levit_mlp(dim)]
        self.blocks = nn.Sequential(*layers)
        self.head, self.head_dist = BNLinear(dims[-1], num_classes), BNLinear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x).flatten(2).transpose(1, 2)).mean(1)
        return (self.head(x) + self.head_dist(x)) / 2


_LEVIT = {"128s": ((4, 6, 8), (2, 3, 4)), "128": ((4, 8, 12), (4, 4, 4))}


def levit(size: str = "128s", resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """LeViT-128S (``size="128s"``) or LeViT-128 (``"128"``), widths (128, 256, 384), key dim 16."""
    if size not in _LEVIT:
        raise ConfigError(f"LeViT size must be one of {sorted(_LEVIT)}, got {size!r}")
    heads, depths = _LEVIT[size]
    return with_input(LeViT((128, 256, 384), heads, depths, resolution, num_classes), resolution)
