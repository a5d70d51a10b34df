"""Torch modules of the ops that the cell-graph spaces need (``nb101``, ``dense_cell``).

NAS-Bench-101 (Ying et al., 2019) joins its vertices with two operations no other
space here uses: a *truncation* that keeps the first ``c_out`` channels of a wider
tensor (an interior vertex feeding a narrower one), and a 2x2, stride-2 max pool
between stacks (TensorFlow ``same`` padding, so an odd input rounds up). They are
registered ops (role ``op``) so that the profiled block is the block the network runs.

A dense cell (DenseNet, Huang et al., 2017) is a run of *dense layers*: each node reads
the cell input and every earlier node (their channel concatenation) and appends its
``growth`` new channels; ``dense_layer`` is one node with that concatenation, and
``dense_transition`` the compressing 1x1 conv and 2x2 average pool between cells.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas import registry
from hwnas.errors import ProfilingError
from hwnas.nn.dense_vocab import DENSE_KERNEL, DENSE_OPS
from hwnas.primitives import Primitive


class Truncate(nn.Module):
    """The first ``c_out`` channels of the input (NB101's channel truncation)."""

    def __init__(self, c_out: int) -> None:
        super().__init__()
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :self.c_out]


@registry.register("op", "truncate")
def build_truncate(p: Primitive) -> nn.Module:
    """Keep the first ``c_out`` of ``c_in`` channels (needs c_out <= c_in, stride 1)."""
    if p.c_out > p.c_in or p.stride != 1:
        raise ProfilingError(f"{p.key}: truncate keeps channels (c_out <= c_in) at stride 1")
    return Truncate(p.c_out)


def _truncate_example(tmp_dir: object) -> list[Primitive]:
    """The contract suite's cases: narrowing and same width."""
    return [Primitive("truncate", 8, 5, 6, 6), Primitive("truncate", 8, 8, 6, 6)]


build_truncate.example = _truncate_example  # type: ignore[attr-defined]


@registry.register("op", "max_pool_2x2")
def build_max_pool_2x2(p: Primitive) -> nn.Module:
    """2x2 max pool, stride 2, output ceil(h/2) ('same' padding); keeps the channels."""
    if p.c_in != p.c_out or p.stride != 2:
        raise ProfilingError(f"{p.key}: max_pool_2x2 keeps the channels and has stride 2")
    return nn.MaxPool2d(2, 2, ceil_mode=True)


def _max_pool_example(tmp_dir: object) -> list[Primitive]:
    """The contract suite's cases: even and odd inputs."""
    return [Primitive("max_pool_2x2", 8, 8, 6, 6, stride=2), Primitive("max_pool_2x2", 4, 4, 7, 7, stride=2)]


build_max_pool_2x2.example = _max_pool_example  # type: ignore[attr-defined]


# -- dense cells (``dense_cell`` space) --------------------------------------------------------
def _bn_relu(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.ReLU()]


def dense_node(op: str, c: int, growth: int) -> nn.Module:
    """A dense node's function H (pre-activation, as DenseNet's BN-ReLU-Conv), ``c`` -> ``growth``."""
    if op in ("conv1x1", "conv3x3", "conv5x5"):
        k = DENSE_KERNEL[op]
        return nn.Sequential(*_bn_relu(c), nn.Conv2d(c, growth, k, 1, k // 2, bias=False))
    if op == "sep_conv3x3":
        return nn.Sequential(*_bn_relu(c), nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False),
                             nn.Conv2d(c, growth, 1, bias=False))
    if op == "bottleneck3x3":  # DenseNet-B: 1x1 to 4 x growth first
        return nn.Sequential(*_bn_relu(c), nn.Conv2d(c, 4 * growth, 1, bias=False), *_bn_relu(4 * growth),
                             nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False))
    if op == "avg_pool3x3":
        return nn.Sequential(*_bn_relu(c), nn.Conv2d(c, growth, 1, bias=False),
                             nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    raise ProfilingError(f"dense_layer: unknown cell_op {op!r}; known: {', '.join(DENSE_OPS)}")


class DenseLayer(nn.Module):
    """One dense node: its input (the cell input and every earlier node, concatenated)
    followed by the node's ``growth`` new channels, so the next node reads them all."""

    def __init__(self, op: str, c: int, growth: int) -> None:
        super().__init__()
        self.h = dense_node(op, c, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.h(x)], dim=1)


@registry.register("op", "dense_layer")
def build_dense_layer(p: Primitive) -> nn.Module:
    """Dense node ``extras cell_op`` on c_in channels, output c_in + growth (= c_out) channels."""
    op = str(p.extra("cell_op", ""))
    if p.c_out <= p.c_in or p.stride != 1 or op not in DENSE_OPS or p.kernel != DENSE_KERNEL[op]:
        raise ProfilingError(f"{p.key}: dense_layer needs c_out > c_in, stride 1 and a cell_op of "
                             f"{', '.join(DENSE_OPS)} with its kernel")
    return DenseLayer(op, p.c_in, p.c_out - p.c_in)


def _dense_layer_example(tmp_dir: object) -> list[Primitive]:
    """The contract suite's cases: every dense op at a small shape."""
    return [Primitive("dense_layer", 8, 12, 6, 6, kernel=DENSE_KERNEL[op], extras=(("cell_op", op),))
            for op in DENSE_OPS]


build_dense_layer.example = _dense_layer_example  # type: ignore[attr-defined]


@registry.register("op", "dense_transition")
def build_dense_transition(p: Primitive) -> nn.Module:
    """DenseNet transition between cells: BN-ReLU, 1x1 conv to c_out, 2x2 average pool (stride 2)."""
    if p.stride != 2:
        raise ProfilingError(f"{p.key}: dense_transition has stride 2")
    return nn.Sequential(*_bn_relu(p.c_in), nn.Conv2d(p.c_in, p.c_out, 1, bias=False),
                         nn.AvgPool2d(2, 2, ceil_mode=True))


def _dense_transition_example(tmp_dir: object) -> list[Primitive]:
    return [Primitive("dense_transition", 12, 6, 6, 6, stride=2), Primitive("dense_transition", 8, 4, 7, 7, stride=2)]


build_dense_transition.example = _dense_transition_example  # type: ignore[attr-defined]
