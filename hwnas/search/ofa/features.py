"""Architecture features for the accuracy predictor: what decides a subnet's accuracy, said
plainly.

The one-hot encoding (:func:`hwnas.search.ofa.predictor.encode`) says *which* choice each
active decision took, but not that kernel 7 is bigger than 5 or that a deeper stage has
more blocks; with ~100 labelled subnets a model cannot learn those orders from one-hot
bits alone. The numeric features below state them: each stage's depth and its active
blocks' mean kernel and expansion, the input resolution, and two cheap whole-network
measures (log multiply-adds and log parameters, computed from the network's primitives).
They are appended to the one-hot bits; every column is standardised on the training
subnets by the predictor that uses them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hwnas.primitives import NetworkSpec, Primitive
from hwnas.search.ofa.predictor import encode
from hwnas.search.spaces.base import Arch, SearchSpace


def primitive_work(p: Primitive) -> tuple[float, float]:
    """(multiply-adds, parameters) of one primitive of a supernet space (conv, mbconv, fc,
    pool); ops without weights count their reads as multiply-adds."""
    ho, wo = p.out_hw
    k2 = p.kernel * p.kernel
    if p.op.startswith("mbconv") or p.op.startswith("mb"):
        mid = p.c_in * max(p.expansion, 1.0)
        expand = p.c_in * mid if p.expansion > 1 else 0.0
        params = expand + mid * k2 + mid * p.c_out
        return expand * p.h * p.w + (mid * k2 + mid * p.c_out) * ho * wo, params
    if p.op.startswith("conv") or p.op.startswith("dwconv"):
        params = p.c_in / max(p.groups, 1) * p.c_out * k2
        return params * ho * wo, params
    if p.op.startswith("fc"):
        return float(p.c_in * p.c_out), float(p.c_in * p.c_out)
    return float(p.c_in * p.h * p.w), 0.0


def network_work(net: NetworkSpec) -> tuple[float, float]:
    macs = params = 0.0
    for p in net.nodes:
        m, w = primitive_work(p)
        macs, params = macs + m, params + w
    return macs, params


def numeric_features(space: SearchSpace, archs: Sequence[Arch]) -> tuple[np.ndarray, list[str]]:
    """Per arch: [resolution, per stage (depth, mean kernel, mean expansion), log MACs,
    log params] where the space says stages (``stage_choices``), else the last two only."""
    rows, names = [], []
    staged = callable(getattr(space, "stage_choices", None)) and callable(getattr(space, "resolution_of", None))
    for a in archs:
        row: list[float] = []
        if staged:
            stages = space.stage_choices(a)  # type: ignore[attr-defined]
            row.append(float(space.resolution_of(a)))  # type: ignore[attr-defined]
            for st in stages:
                row += [float(len(st)), float(np.mean([k for _, k in st])), float(np.mean([e for e, _ in st]))]
        macs, params = network_work(space.to_network(a))
        rows.append(row + [math.log1p(macs), math.log1p(params)])
    if staged and archs:
        n_st = (len(rows[0]) - 3) // 3
        names = ["resolution"] + [f"s{i}.{f}" for i in range(n_st) for f in ("depth", "kernel", "expand")]
    names += ["log_macs", "log_params"]
    return np.asarray(rows, dtype=np.float64).reshape(len(archs), len(names)), names


def features(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One-hot encoding of the active decisions, then :func:`numeric_features`."""
    num, _ = numeric_features(space, archs)
    return np.concatenate([encode(space, archs).astype(np.float64), num], axis=1)
