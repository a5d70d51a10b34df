"""Function-preserving network morphisms (Net2Net-style) on the blocks hwnas builds.

A child network that starts from its parent's function needs only a short fine-tune
instead of training from scratch (LEMONADE, NASH). Each operator here turns parent
weights into child weights so that the child computes exactly what the parent did:

* **widen** an inverted-residual block's hidden layer: new hidden units replicate random
  existing ones (their expand-conv filters, depthwise filters and BatchNorm parameters
  and statistics), and the projection's weights from every copy of a unit are divided
  by the unit's number of copies, so the sum it computes is unchanged. Replicas see the
  same inputs, so in training mode their batch statistics agree too;
* **kernel-grow** a (depthwise) convolution: the kernel is zero-padded around its centre
  and the padding grows with it, which adds only zero terms. Only odd sizes growing by
  an even amount keep the centre (and the output size);
* **deepen** by a residual block whose last BatchNorm has zero scale and shift: its branch
  adds exactly zero (in eval and training mode), so the block is the identity; the scale
  receives gradients, so the block starts learning at the first step.

What cannot preserve the function (a shrink, an even kernel, a new block that changes the
shape, a widened squeeze-excite block) is refused with one :class:`MorphismError` line.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import HwnasError
from hwnas.nn.builders import MBConv


class MorphismError(HwnasError):
    """A morphism that cannot preserve the parent's function (the message says which)."""


def grow_kernel(weight: torch.Tensor, k: int, where: str = "conv") -> torch.Tensor:
    """``weight`` (out, in, kh, kw) zero-padded to ``k`` x ``k`` around its centre."""
    kh, kw = int(weight.shape[-2]), int(weight.shape[-1])
    if kh != kw:
        raise MorphismError(f"{where}: kernel {kh}x{kw} is not square; kernel-grow needs square kernels")
    if k < kh:
        raise MorphismError(f"{where}: kernel {kh} -> {k} shrinks; a morphism only grows kernels")
    if kh % 2 == 0 or k % 2 == 0:
        raise MorphismError(f"{where}: kernel {kh} -> {k}: only odd sizes keep the centre, so only an odd "
                            "kernel grown to an odd size preserves the function")
    p = (k - kh) // 2
    return nn.functional.pad(weight, (p, p, p, p))


def unit_map(old: int, new: int, rng: np.random.Generator, where: str = "block") -> np.ndarray:
    """Net2Net's mapping of ``new`` units onto ``old`` ones: the first ``old`` are themselves,
    the others replicate random existing units."""
    if new < old:
        raise MorphismError(f"{where}: {old} -> {new} hidden units shrinks; a morphism only widens")
    return np.concatenate([np.arange(old), rng.integers(0, old, size=new - old)]).astype(np.int64)


def _copy_bn(src: nn.BatchNorm2d, dst: nn.BatchNorm2d, g: torch.Tensor) -> None:
    """Per-channel parameters and statistics of ``src`` gathered by ``g`` into ``dst``."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[g])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dst.eps, dst.momentum = src.eps, src.momentum


def _parts(block: MBConv) -> tuple[nn.Sequential | None, nn.Sequential, nn.Sequential]:
    """(expand or None, depthwise, project) conv-BN units of an inverted-residual block."""
    body = list(block.body)
    if len(body) == 3:
        return body[0], body[1], body[2]
    if len(body) == 2:
        return None, body[0], body[1]
    raise MorphismError("block: squeeze-excite blocks are not supported by the morphism operators")


def transfer_mbconv(src: MBConv, dst: MBConv, rng: np.random.Generator, where: str = "block") -> None:
    """Fill ``dst`` (same or wider hidden layer, same or larger kernel) with ``src``'s function."""
    s_exp, s_dw, s_proj = _parts(src)
    d_exp, d_dw, d_proj = _parts(dst)
    s_conv, d_conv = s_dw[0], d_dw[0]
    if (s_exp is None) != (d_exp is None) or src.residual != dst.residual or s_conv.stride != d_conv.stride \
            or s_proj[0].out_channels != d_proj[0].out_channels or s_conv.in_channels == 0:
        raise MorphismError(f"{where}: blocks differ in shape or stride (or gain or lose their expand layer); "
                            "only widen and kernel-grow map a block onto another")
    mid_old, mid_new = s_conv.out_channels, d_conv.out_channels
    if s_exp is None and mid_new != mid_old:
        raise MorphismError(f"{where}: a block without expand layer (e1) cannot be widened")
    if mid_new != mid_old and any(u[0].groups != 1 for u in (s_exp, s_proj) if u is not None):
        raise MorphismError(f"{where}: grouped pointwise convolutions cannot be widened unit by unit")
    g = torch.from_numpy(unit_map(mid_old, mid_new, rng, where))
    counts = torch.bincount(g, minlength=mid_old).to(s_proj[0].weight.dtype)
    with torch.no_grad():
        if s_exp is not None and d_exp is not None:
            d_exp[0].weight.copy_(s_exp[0].weight[g])
            _copy_bn(s_exp[1], d_exp[1], g)
        d_conv.weight.copy_(grow_kernel(s_conv.weight[g], d_conv.kernel_size[0], where))
        _copy_bn(s_dw[1], d_dw[1], g)
        d_proj[0].weight.copy_(s_proj[0].weight[:, g] / counts[g].view(1, -1, 1, 1))
        _copy_bn(s_proj[1], d_proj[1], torch.arange(s_proj[1].num_features))


def identity_block(block: nn.Module, where: str = "block") -> None:
    """Make a freshly built residual block the identity: its branch's last BN outputs zero."""
    if not isinstance(block, MBConv) or not block.residual:
        raise MorphismError(f"{where}: only a residual block (stride 1, same channels in and out) can be "
                            "inserted as the identity")
    _, _, proj = _parts(block)
    with torch.no_grad():
        proj[1].weight.zero_()
        proj[1].bias.zero_()


def transfer(src: nn.Module, dst: nn.Module, rng: np.random.Generator, where: str = "node") -> None:
    """``dst`` computes what ``src`` does: same-shaped modules are copied, inverted-residual
    blocks may be widened and their kernels grown."""
    if isinstance(src, MBConv) and isinstance(dst, MBConv):
        transfer_mbconv(src, dst, rng, where)
        return
    a, b = src.state_dict(), dst.state_dict()
    if type(src) is not type(dst) or a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise MorphismError(f"{where}: {type(src).__name__} and {type(dst).__name__} differ in shape; "
                            "only inverted-residual blocks can be widened or kernel-grown")
    dst.load_state_dict(a)


def morph_network(parent: Any, child: Any, node_map: list[int | None], rng: np.random.Generator) -> None:
    """Fill ``child`` (a freshly built ``Network``) from ``parent``: ``node_map[j]`` is the
    parent node child node ``j`` inherits, or None for a block inserted as the identity."""
    for j, i in enumerate(node_map):
        if i is None:
            identity_block(child.nodes[j], f"node {j}")
        else:
            transfer(parent.nodes[i], child.nodes[j], rng, f"node {j}")
