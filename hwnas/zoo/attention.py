"""Transformer building blocks shared by the transformer and modern zoo families.

Written here, in plain torch ops, so that the ONNX export shows the structure an exporter
writes for the reference models: a fused Q/K/V ``Linear`` (one ``MatMul`` + ``Add``) split
by ``Reshape``/``Transpose``/``Gather``, the scaled dot product as batched ``MatMul``s around
a ``Softmax``, the output projection, ``LayerNormalization`` (opset 17) and GELU as its
``Erf`` pattern. ``torch.nn.functional.scaled_dot_product_attention`` is avoided on purpose:
its export differs between torch versions, and the kernel job must see the explicit graph.

Window helpers (partition/merge with ``Reshape``/``Transpose``, the shifted-window mask) follow
Swin's reference (microsoft/Swin-Transformer); the relative position bias is a learned table
per head indexed by the pairwise offset of two tokens (Swin: signed offsets inside a window;
LeViT/EfficientFormer: absolute offsets over the whole map).
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from hwnas.errors import ConfigError

#: Added to masked attention logits, as Swin's reference does (softmax makes it ~e^-100).
MASK_VALUE = -100.0


class Mlp(nn.Sequential):
    """Transformer feed-forward: Linear, activation (GELU unless told), Linear."""

    def __init__(self, dim: int, hidden: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__(nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim))


class Attention(nn.Module):
    """Multi-head self-attention over tokens (B, N, C): fused Q/K/V projection, scaled dot
    product, softmax, weighted sum of values, output projection.

    ``forward`` takes an optional additive ``bias`` broadcast to (B, heads, N, N) (relative
    position bias) and an optional ``mask`` (W, N, N) for batches made of W windows per image
    (Swin's shifted windows), added per window.
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"attention width {dim} is not a multiple of {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def weights(self, x: torch.Tensor, bias: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention probabilities (B, heads, N, N) and the values (B, heads, N, C/heads)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        logits = (q * self.scale) @ k.transpose(-2, -1)
        if bias is not None:
            logits = logits + bias
        if mask is not None:
            w = mask.shape[0]
            logits = (logits.view(b // w, w, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.heads,
                                                                                                      n, n)
        return logits.softmax(dim=-1), v

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        probs, v = self.weights(x, bias, mask)
        return self.proj((probs @ v).transpose(1, 2).reshape(b, n, c))


class PreNormBlock(nn.Module):
    """ViT/DeiT encoder block (and MobileViT's): x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, hidden: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C): non-overlapping windows as token batches."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, w*w, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """Swin's mask for a map cyclically shifted by ``shift``: (nW, N, N), 0 between tokens of the
    same region of the unshifted image and :data:`MASK_VALUE` between tokens that the roll brought
    together from different regions (the borders wrapped around)."""
    region = torch.zeros(1, h, w, 1)
    label = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            region[:, hs, ws, :] = label
            label += 1
    ids = window_partition(region, window).squeeze(-1)
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, MASK_VALUE)


def window_offsets(window: int) -> torch.Tensor:
    """Swin's relative position index (w*w, w*w) into a ((2w-1)^2)-row bias table: the signed
    (dy, dx) offset of two tokens of a window, shifted to be non-negative and flattened."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def absolute_offsets(resolution: int, stride: int = 1) -> tuple[torch.Tensor, int]:
    """LeViT/EfficientFormer attention-bias index: for each query (on a grid subsampled by
    ``stride``) and key of a ``resolution``² map, the id of their absolute (|dy|, |dx|) offset;
    returns the (Nq, Nk) index and the number of distinct offsets (the bias table's width)."""
    keys = list(itertools.product(range(resolution), repeat=2))
    queries = list(itertools.product(range(0, resolution, stride), repeat=2))
    ids: dict[tuple[int, int], int] = {}
    index = [[ids.setdefault((abs(q[0] - k[0]), abs(q[1] - k[1])), len(ids)) for k in keys] for q in queries]
    return torch.tensor(index, dtype=torch.long, device="cpu"), len(ids)
