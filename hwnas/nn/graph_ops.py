"""Torch modules of the small glue ops that cell-graph spaces need (``nb101``, ``dense_cell``).

NAS-Bench-101 (Ying et al., 2019) joins its vertices with two operations no other
space here uses: a *truncation* that keeps the first ``c_out`` channels of a wider
tensor (an interior vertex feeding a narrower one), and a 2x2, stride-2 max pool
between stacks (TensorFlow ``same`` padding, so an odd input rounds up). They are
registered ops (role ``op``) so that the profiled block is the block the network runs.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas import registry
from hwnas.errors import ProfilingError
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
