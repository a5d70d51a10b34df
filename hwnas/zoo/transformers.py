"""Vision transformers: ViT and DeiT (tiny, small) and a Swin-T-like hierarchical model.

Layout facts taken from the papers' reference code (facebookresearch/deit,
microsoft/Swin-Transformer), the code itself written here:

- ViT/DeiT: 16x16 patch embedding (a strided convolution), a class token, learned position
  embeddings, 12 pre-norm encoder blocks (LayerNorm, MHSA with a fused qkv projection, GELU
  MLP of 4x width), a final LayerNorm and a linear head on the class token. Tiny: width 192,
  3 heads; small: width 384, 6 heads. DeiT adds a distillation token with its own head; at
  evaluation the two heads' outputs are averaged.
- Swin-T: 4x4 patch embedding with LayerNorm, 4 stages of depths (2, 2, 6, 2), width 96 and
  heads (3, 6, 12, 24), doubling width per stage through patch merging (2x2 neighbours
  concatenated, LayerNorm of 4C, Linear 4C -> 2C without bias); window attention over 7x7
  windows with a learned relative position bias per head ((2*7-1)^2 table), every second block
  shifted by half a window (``torch.roll``) with the mask that keeps regions the roll brought
  together apart; MLP ratio 4; LayerNorm, average over tokens, linear head. When a stage's map
  is no larger than the window, the window is the map and the shift is dropped (as the reference).
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.zoo.attention import Attention, Mlp, PreNormBlock, shifted_window_mask, window_merge, window_offsets
from hwnas.zoo.attention import window_partition as partition
from hwnas.zoo.blocks import with_input


class VisionTransformer(nn.Module):
    """ViT (``distilled=False``) or DeiT with a distillation token (``distilled=True``)."""

    def __init__(self, dim: int, depth: int, heads: int, resolution: int, patch: int = 16,
                 num_classes: int = 1000, distilled: bool = False) -> None:
        super().__init__()
        if resolution % patch:
            raise ConfigError(f"ViT resolution {resolution} is not a multiple of the patch size {patch}")
        self.tokens = 2 if distilled else 1
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, self.tokens, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (resolution // patch) ** 2 + self.tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[PreNormBlock(dim, heads, 4 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.head_dist = nn.Linear(dim, num_classes) if distilled else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        if self.head_dist is None:
            return self.head(x[:, 0])
        # DeiT: class and distillation heads; their average is the prediction at evaluation.
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


def vit(dim: int = 192, depth: int = 12, heads: int = 3, resolution: int = 224, patch: int = 16,
        num_classes: int = 1000, distilled: bool = False) -> nn.Module:
    """A ViT/DeiT of any width, depth and head count (the named factories fix the papers' ones)."""
    return with_input(VisionTransformer(dim, depth, heads, resolution, patch, num_classes, distilled), resolution)


def vit_tiny(resolution: int = 224, depth: int = 12, num_classes: int = 1000) -> nn.Module:
    """ViT-Ti/16: width 192, 3 heads."""
    return vit(192, depth, 3, resolution, 16, num_classes)


def vit_small(resolution: int = 224, depth: int = 12, num_classes: int = 1000) -> nn.Module:
    """ViT-S/16: width 384, 6 heads."""
    return vit(384, depth, 6, resolution, 16, num_classes)


def deit_tiny(resolution: int = 224, depth: int = 12, num_classes: int = 1000) -> nn.Module:
    """DeiT-Ti (distilled): ViT-Ti/16 with a distillation token and head."""
    return vit(192, depth, 3, resolution, 16, num_classes, distilled=True)


def deit_small(resolution: int = 224, depth: int = 12, num_classes: int = 1000) -> nn.Module:
    """DeiT-S (distilled): ViT-S/16 with a distillation token and head."""
    return vit(384, depth, 6, resolution, 16, num_classes, distilled=True)


class SwinBlock(nn.Module):
    """Swin block on tokens (B, H*W, C): LN, (shifted) window attention with relative position
    bias, residual; LN, MLP, residual."""

    def __init__(self, dim: int, heads: int, size: int, window: int, shift: int) -> None:
        super().__init__()
        if size <= window:
            window, shift = size, 0
        if size % window:
            raise ConfigError(f"Swin stage map {size}x{size} is not a multiple of the window {window}")
        self.size, self.window, self.shift = size, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        self.register_buffer("bias_index", window_offsets(window).flatten(), persistent=False)
        self.register_buffer("mask", shifted_window_mask(size, size, window, shift) if shift else None,
                             persistent=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def relative_bias(self) -> torch.Tensor:
        """The (heads, N, N) relative position bias of one window."""
        n = self.window ** 2
        return self.bias_table[self.bias_index].view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        s, w = self.size, self.window
        y = self.norm1(x).view(b, s, s, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(partition(y, w), self.relative_bias().unsqueeze(0), self.mask)
        y = window_merge(y, w, s, s)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Swin's downsampling: the 2x2 neighbours of each position concatenated (4C), LN, Linear -> 2C."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.size, self.size, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))


class Swin(nn.Module):
    """Swin Transformer: patch embedding, stages of Swin blocks joined by patch merging, head."""

    def __init__(self, dim: int, depths: tuple[int, ...], heads: tuple[int, ...], window: int, resolution: int,
                 num_classes: int = 1000) -> None:
        super().__init__()
        if resolution % (4 * 2 ** (len(depths) - 1)):
            raise ConfigError(f"Swin resolution {resolution} must be a multiple of {4 * 2 ** (len(depths) - 1)}")
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.embed_norm = nn.LayerNorm(dim)
        size, layers = resolution // 4, []
        for i, (d, h) in enumerate(zip(depths, heads)):
            if i:
                layers.append(PatchMerging(dim, size))
                dim, size = 2 * dim, size // 2
            layers += [SwinBlock(dim, h, size, window, window // 2 if j % 2 else 0) for j in range(d)]
        self.stages = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.patch_embed(x).flatten(2).transpose(1, 2))
        return self.head(self.norm(self.stages(x)).mean(1))


def swin_t(width: float = 1.0, resolution: int = 224, window: int = 7, depths: tuple[int, ...] = (2, 2, 6, 2),
           num_classes: int = 1000) -> nn.Module:
    """Swin-T-like: width 96 * ``width`` (heads 3/6/12/24 kept, so heads get narrower), depths
    (2, 2, 6, 2), 7x7 windows at 224 (use ``window=6`` at 192, ``5`` at 160)."""
    dim = 3 * max(1, round(32 * width))
    return with_input(Swin(dim, tuple(depths), (3, 6, 12, 24)[:len(depths)], window, resolution, num_classes),
                      resolution)
