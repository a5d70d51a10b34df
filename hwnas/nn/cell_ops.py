"""Torch modules of the DARTS cell operations, and the cell's concatenation.

The registered builders (role ``op``: ``sep_conv``, ``dil_conv``, ``factorized_reduce``,
``concat``) make the modules of the *final* network, the one the profilers time; the
same classes, built with ``affine=False`` BatchNorm and on a share of the channels,
are the mixed operations of the differentiable supernets (:func:`make_cell_op`), so a
searched op and a profiled op can never drift apart. Definitions follow the DARTS paper's
operations (Liu et al., 2019): a separable convolution is applied twice, a dilated
convolution once with dilation 2, and a stride-2 identity is a factorized reduction.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas import registry
from hwnas.errors import ConfigError, ProfilingError
from hwnas.primitives import Primitive


class SepConv(nn.Module):
    """(ReLU, depthwise kxk, pointwise 1x1, BN) twice; the first depthwise carries the stride."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        pad = k // 2
        self.op = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_in, k, stride, pad, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False), nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(), nn.Conv2d(c_in, c_in, k, 1, pad, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, depthwise kxk with dilation 2, pointwise 1x1, BN."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_in, k, stride, k - 1, dilation=2, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing every other pixel: two stride-2 1x1 convs,
    one shifted by a pixel, concatenated, then BN (DARTS' stride-2 identity)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ConfigError(f"factorized_reduce: c_out must be even, got {c_out}")
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # same size for odd inputs too
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class ZeroOp(nn.Module):
    """DARTS ``none``: zeros of the (strided) input shape, computed from the input."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::self.stride, ::self.stride] * 0.0


class Concat(nn.Module):
    """Channel concatenation of a cell's intermediate nodes. It takes its inputs apart
    (``takes_inputs_apart``): the graph executor hands it the list of predecessor
    outputs in node order instead of their sum. Alone (one input) it is the identity."""

    takes_inputs_apart = True

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)


def relu_conv_bn(c_in: int, c_out: int, affine: bool = True) -> nn.Sequential:
    """The cell input preprocessing: ReLU, 1x1 conv, BN (same layout as ``nor_conv_1x1``)."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))


def make_cell_op(name: str, c: int, stride: int, *, affine: bool = True, pool_bn: bool = False) -> nn.Module:
    """The module of DARTS operation ``name`` on ``c`` channels (search supernets).

    ``pool_bn`` puts an affine-free BN after pooling, as DARTS' mixed op does so pooled
    outputs have the scale of the convolutions they are mixed with.
    """
    if name == "none":
        return ZeroOp(stride)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool: nn.Module = nn.MaxPool2d(3, stride, 1) if name.startswith("max") else \
            nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False)) if pool_bn else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    kind, _, size = name.rpartition("_")
    k = int(size.split("x")[0]) if size[:1].isdigit() else 0
    if kind == "sep_conv" and k:
        return SepConv(c, c, k, stride, affine)
    if kind == "dil_conv" and k:
        return DilConv(c, c, k, stride, affine)
    raise ConfigError(f"unknown DARTS operation {name!r}")


# -- registered builders (final networks, affine BN) --------------------------------------
@registry.register("op", "sep_conv")
def build_sep_conv(p: Primitive) -> nn.Module:
    """DARTS separable convolution (applied twice), kernel ``p.kernel``."""
    return SepConv(p.c_in, p.c_out, p.kernel, p.stride)


@registry.register("op", "dil_conv")
def build_dil_conv(p: Primitive) -> nn.Module:
    """DARTS dilated (2) separable convolution, kernel ``p.kernel``."""
    return DilConv(p.c_in, p.c_out, p.kernel, p.stride)


@registry.register("op", "factorized_reduce")
def build_factorized_reduce(p: Primitive) -> nn.Module:
    """Stride-2 reduction by two shifted 1x1 convolutions (DARTS)."""
    if p.stride != 2:
        raise ProfilingError(f"{p.key}: factorized_reduce needs stride 2")
    return FactorizedReduce(p.c_in, p.c_out)


def _factorized_reduce_example(tmp_dir: object) -> list[Primitive]:
    """The contract suite's cases: it exists only strided (even and odd inputs)."""
    return [Primitive("factorized_reduce", 8, 8, 6, 6, stride=2), Primitive("factorized_reduce", 8, 16, 7, 7, stride=2)]


build_factorized_reduce.example = _factorized_reduce_example  # type: ignore[attr-defined]


@registry.register("op", "concat")
def build_concat(p: Primitive) -> nn.Module:
    """Channel concatenation of a node's inputs (identity on a single input)."""
    if p.c_in != p.c_out or p.stride != 1:
        raise ProfilingError(f"{p.key}: concat keeps its (concatenated) shape")
    return Concat()
