"""Modern convolution/attention hybrids: ConvNeXt-T-like, MobileViT (XXS/XS/S) and
EfficientFormer-L1-like.

Layout facts taken from the papers' reference code (facebookresearch/ConvNeXt,
apple/ml-cvnets, snap-research/EfficientFormer), the code itself written here:

- ConvNeXt-T: 4x4 stride-4 stem + LayerNorm; stages of depths (3, 3, 9, 3) and widths
  (96, 192, 384, 768), joined by LayerNorm + 2x2 stride-2 convolution; block = 7x7 depthwise
  convolution, permute to channels-last, LayerNorm, Linear 4x, GELU, Linear, layer scale,
  permute back, residual. The channels-first LayerNorm (stem, downsampling) is written out as
  mean/variance as the reference does (the export shows ReduceMean/Pow/Sqrt, not
  LayerNormalization); the head is global average, LayerNorm, Linear.
- MobileViT: 3x3 stride-2 stem (16), MobileNetV2 blocks with SiLU (expansion 2 for XXS, 4 for
  XS/S), three MobileViT blocks at 1/8, 1/16, 1/32 (after a stride-2 MV2 block) with
  transformer widths XXS (64, 80, 96), XS (96, 120, 144), S (144, 192, 240), depths (2, 4, 3),
  4 heads, FFN 2x with SiLU, 2x2 patches; stage outputs XXS (16, 24, 48, 64, 80),
  XS (32, 48, 64, 80, 96), S (32, 64, 96, 128, 160); a 1x1 expansion to 4x the last width
  (320/384/640), global pool, Linear. MobileViT block = 3x3 conv, 1x1 conv to the transformer
  width, unfold into patches, pre-norm transformer + LayerNorm, fold, 1x1 conv back,
  concatenation with the input, 3x3 fusion conv.
- EfficientFormer-L1: two 3x3 stride-2 conv-BN-ReLU stem layers (24, 48); stages of depths
  (3, 2, 6, 4) and widths (48, 96, 224, 448) joined by 3x3 stride-2 conv-BN; 4D blocks
  x + s1 * (avgpool3x3(x) - x), x + s2 * MLP(x) with 1x1 conv-BN-GELU-conv-BN (4x); the last
  block is a 3D block on flattened tokens: LN, MHSA with key dim 32, 8 heads, value ratio 4 and
  a learned bias per absolute offset; LN, Linear MLP (4x); final LN, mean over tokens, class and
  distillation heads averaged at evaluation.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.zoo.attention import Mlp, PreNormBlock, absolute_offsets
from hwnas.zoo.blocks import ConvBNAct, InvertedResidual, divisible, with_input


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over C of an (N, C, H, W) map, written out as ConvNeXt's reference writes it."""

    def __init__(self, c: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv, channels-last LayerNorm, inverted MLP (4x, GELU), layer scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        return x + (self.gamma * self.mlp(y)).permute(0, 3, 1, 2)


class ConvNeXtHead(nn.Module):
    """Global average pool, LayerNorm, Linear."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.mean((-2, -1))))


def convnext_t(width: float = 1.0, resolution: int = 224, depths: tuple[int, ...] = (3, 3, 9, 3),
               num_classes: int = 1000) -> nn.Module:
    """ConvNeXt-T-like: widths (96, 192, 384, 768) * ``width``, depths (3, 3, 9, 3)."""
    dims = [divisible(d * width) for d in (96, 192, 384, 768)][:len(depths)]
    layers: list[nn.Module] = [nn.Conv2d(3, dims[0], 4, 4), ChannelsFirstLayerNorm(dims[0])]
    for i, (n, d) in enumerate(zip(depths, dims)):
        if i:
            layers += [ChannelsFirstLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], d, 2, 2)]
        layers += [ConvNeXtBlock(d) for _ in range(n)]
    return with_input(nn.Sequential(*layers, ConvNeXtHead(dims[-1], num_classes)), resolution)


def unfold_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * p*p, H*W / p*p, C): one token sequence per offset inside a p x p
    patch, made of the pixels at that offset in every patch (MobileViT's unfolding)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch).permute(0, 3, 5, 2, 4, 1)
    return x.reshape(b * patch * patch, (h // patch) * (w // patch), c)


def fold_patches(x: torch.Tensor, patch: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`unfold_patches`: (B * p*p, N, C) -> (B, C, H, W)."""
    c = x.shape[-1]
    x = x.reshape(-1, patch, patch, h // patch, w // patch, c).permute(0, 5, 3, 1, 4, 2)
    return x.reshape(-1, c, h, w)


class MobileViTBlock(nn.Module):
    """Local 3x3 + 1x1 convs, global transformer over unfolded patches, fold, 1x1 back,
    concatenation with the input and a 3x3 fusion conv."""

    def __init__(self, c: int, dim: int, depth: int, heads: int = 4, patch: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(ConvBNAct(c, c, 3, a="swish"), nn.Conv2d(c, dim, 1, bias=False))
        self.transformer = nn.Sequential(*[PreNormBlock(dim, heads, 2 * dim, nn.SiLU) for _ in range(depth)],
                                         nn.LayerNorm(dim))
        self.proj = ConvBNAct(dim, c, 1, a="swish")
        self.fusion = ConvBNAct(2 * c, c, 3, a="swish")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.transformer(unfold_patches(self.local(x), self.patch))
        y = self.proj(fold_patches(y, self.patch, h, w))
        return self.fusion(torch.cat([x, y], 1))


#: size -> (stage output widths, transformer widths, MV2 expansion)
_MOBILEVIT = {"xxs": ((16, 24, 48, 64, 80), (64, 80, 96), 2), "xs": ((32, 48, 64, 80, 96), (96, 120, 144), 4),
              "s": ((32, 64, 96, 128, 160), (144, 192, 240), 4)}


def mobilevit(size: str = "xs", resolution: int = 256, num_classes: int = 1000) -> nn.Module:
    """MobileViT XXS / XS / S (``size``); the resolution must be a multiple of 64 (2x2 patches at 1/32)."""
    if size not in _MOBILEVIT:
        raise ConfigError(f"MobileViT size must be one of {sorted(_MOBILEVIT)}, got {size!r}")
    if resolution % 64:
        raise ConfigError(f"MobileViT resolution {resolution} must be a multiple of 64")
    outs, dims, e = _MOBILEVIT[size]
    layers: list[nn.Module] = [ConvBNAct(3, 16, 3, 2, a="swish"), InvertedResidual(16, outs[0], 3, 1, 16 * e, "swish")]
    c = outs[0]
    for i in range(3):
        layers.append(InvertedResidual(c, outs[1], 3, 2 if i == 0 else 1, c * e, "swish"))
        c = outs[1]
    for out, dim, depth in zip(outs[2:], dims, (2, 4, 3)):
        layers += [InvertedResidual(c, out, 3, 2, c * e, "swish"), MobileViTBlock(out, dim, depth)]
        c = out
    layers += [ConvBNAct(c, 4 * c, 1, a="swish"), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, num_classes)]
    return with_input(nn.Sequential(*layers), resolution)


class PoolMixer4D(nn.Module):
    """EfficientFormer 4D block: x + s1 * (avgpool(x) - x), then x + s2 * (conv1x1-BN-GELU-conv1x1-BN)(x)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1), nn.BatchNorm2d(4 * dim), nn.GELU(),
                                 nn.Conv2d(4 * dim, dim, 1), nn.BatchNorm2d(dim))
        self.s1 = nn.Parameter(torch.full((dim, 1, 1), 1e-5))
        self.s2 = nn.Parameter(torch.full((dim, 1, 1), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.s1 * (self.pool(x) - x)
        return x + self.s2 * self.mlp(x)


class BiasedAttention(nn.Module):
    """EfficientFormer's 3D attention: q/k of ``key_dim``, v of ``ratio * key_dim`` per head,
    a learned bias per head and absolute (|dy|, |dx|) offset, output projection."""

    def __init__(self, dim: int, size: int, key_dim: int = 32, heads: int = 8, ratio: int = 4) -> None:
        super().__init__()
        self.heads, self.key_dim, self.d = heads, key_dim, ratio * key_dim
        self.scale = key_dim ** -0.5
        self.qkv = nn.Linear(dim, heads * (2 * key_dim + self.d))
        self.proj = nn.Linear(heads * self.d, dim)
        index, offsets = absolute_offsets(size)
        self.biases = nn.Parameter(torch.zeros(heads, offsets))
        self.register_buffer("bias_index", index, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, self.heads, -1).permute(0, 2, 1, 3).split(
            [self.key_dim, self.key_dim, self.d], dim=3)
        attn = ((q @ k.transpose(-2, -1)) * self.scale + self.biases[:, self.bias_index]).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, self.heads * self.d))


class Meta3D(nn.Module):
    """EfficientFormer 3D block on tokens: x + s1 * attn(LN(x)), x + s2 * MLP(LN(x))."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), BiasedAttention(dim, size)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, 4 * dim)
        self.s1 = nn.Parameter(torch.full((dim,), 1e-5))
        self.s2 = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.s1 * self.attn(self.norm1(x))
        return x + self.s2 * self.mlp(self.norm2(x))


class EfficientFormer(nn.Module):
    """Conv stem, 4D pool-mixer stages, flatten, 3D attention blocks, LN, two heads averaged."""

    def __init__(self, dims: list[int], depths: tuple[int, ...], resolution: int, vit_blocks: int,
                 num_classes: int) -> None:
        super().__init__()
        if resolution % 32:
            raise ConfigError(f"EfficientFormer resolution {resolution} must be a multiple of 32")
        layers: list[nn.Module] = [ConvBNAct(3, dims[0] // 2, 3, 2), ConvBNAct(dims[0] // 2, dims[0], 3, 2)]
        for i, (n, d) in enumerate(zip(depths, dims)):
            if i:
                layers.append(ConvBNAct(dims[i - 1], d, 3, 2, a="none"))
            last = i == len(depths) - 1
            layers += [PoolMixer4D(d) for _ in range(n - (vit_blocks if last else 0))]
        self.convs = nn.Sequential(*layers)
        size = resolution // 2 ** (len(depths) + 1)
        self.blocks = nn.Sequential(*[Meta3D(dims[-1], size) for _ in range(vit_blocks)])
        self.norm = nn.LayerNorm(dims[-1])
        self.head, self.dist_head = nn.Linear(dims[-1], num_classes), nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.blocks(self.convs(x).flatten(2).transpose(1, 2))).mean(1)
        return (self.head(x) + self.dist_head(x)) / 2


def efficientformer_l1(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """EfficientFormer-L1-like: widths (48, 96, 224, 448) * ``width``, depths (3, 2, 6, 4), one 3D block."""
    dims = [divisible(d * width) for d in (48, 96, 224, 448)]
    return with_input(EfficientFormer(dims, (3, 2, 6, 4), resolution, 1, num_classes), resolution)
