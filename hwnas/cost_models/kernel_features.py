"""Kernel configurations as numbers: family, work (multiply-adds, bytes) and shape features.

Why work terms: a kernel's time is mostly set by how much it computes and how much it
moves, and these extrapolate (a convolution twice as big takes about twice as long), which
trees alone cannot; the trees learn how the runtime departs from that (channel padding to
its block, small spatial sizes, stride, depthwise inefficiency). Fused groups keep their
anchor's family (``conv-add-relu`` is a convolution with a fused sum and activation).
"""
from __future__ import annotations

import math

import numpy as np

from hwnas.primitives import Primitive

BYTES = 4  # float32
#: first op of a kernel -> predictor family
FAMILY: dict[str, str] = {
    **{a: "act" for a in ("relu", "relu6", "clip", "sigmoid", "hsigmoid", "hswish", "tanh", "leakyrelu", "scale",
                          "elu", "selu", "softplus", "gelu", "mish", "erf", "sqrt", "exp", "neg", "cast")},
    **{e: "eltwise" for e in ("add", "mul", "sub", "div", "max", "min", "pow")},
    "maxpool": "pool", "avgpool": "pool", "gap": "gpool", "gmp": "gpool",
    # token kernels: c = the axis length (normalised size, softmax length, K), h = rows
    "layernorm": "norm", "matmul": "bmm", "reciprocal": "act",
}
ACT_NAMES: tuple[str, ...] = ("none", "relu", "relu6", "clip", "sigmoid", "hsigmoid", "hswish", "swish", "tanh",
                              "leakyrelu")
OPS: tuple[str, ...] = ("add", "avgpool", "bn", "channel_shuffle", "clip", "concat", "conv", "dwconv", "fc", "gap",
                        "gconv", "gmp", "hsigmoid", "hswish", "leakyrelu", "maxpool", "mul", "relu", "relu6",
                        "reorder", "reshape", "scale", "se", "sigmoid", "slice", "split", "swish", "tanh",
                        "transpose",
                        # appended (indices above unchanged): transformer-era kernels
                        "layernorm", "softmax", "matmul", "gather", "reduce", "gelu", "sub", "div", "pow", "sqrt",
                        "erf")
FEATURES: tuple[str, ...] = (
    "log2_c_in", "log2_c_out", "log2_h", "log2_w", "kernel", "stride", "log2_groups", "log2_out_hw",
    "log10_macs", "log10_bytes_in", "log10_bytes_out", "log10_bytes_w", "log10_bytes", "intensity",
    "c_in_aligned16", "c_out_aligned16", "pad_in16", "pad_out16", "pad_in8", "has_add", "has_bn", "inputs",
    "log2_mid", "direction", "bcast", "kernel_w", "dilation", "log2_rows", "op",
    *(f"act_{a}" for a in ACT_NAMES),
    # token kernels: batch count of a batched matmul, whether a transpose moves the innermost axis,
    # absorbed transposes of a matmul's operands, a fused scale
    "log2_batch", "perm_inner", "trans_a", "trans_b", "has_scale",
    # channels a multiple of 4: ONNX Runtime's blocked layout runs a depthwise convolution of
    # 2 mod 4 channels (ShuffleNetV2's 58, 122) about 3x slower per multiply-add
    "c_in_aligned4", "c_out_aligned4")


def family(op: str) -> str:
    """The predictor family of a kernel op name (``conv-bn-relu6`` -> ``conv``)."""
    parts = op.split("-")
    if "layernorm" in parts:  # a residual sum fused into the norm (SkipLayerNormalization) is a norm
        return "norm"
    if parts[0] == "reshape" and "transpose" in parts:  # a view chain that moves data
        return "transpose"
    return FAMILY.get(parts[0], parts[0])


def _act(p: Primitive) -> str:
    parts = p.op.split("-")
    if p.op == "se":
        return str(p.extra("gate", "none"))
    if parts[0] == "swish":
        return "swish"
    for a in reversed(parts[1:] if len(parts) > 1 else parts):
        if a in ACT_NAMES:
            return a
    return "none"


def out_hw(p: Primitive) -> tuple[int, int]:
    fam = family(p.op)
    if fam in ("gpool", "fc"):
        return (1, 1)
    pad = p.extra("pad")
    if pad is None:
        return p.out_hw
    k, s = p.kernel, p.stride
    return (max(1, (p.h + 2 * int(pad) - k) // s + 1), max(1, (p.w + 2 * int(pad) - int(p.extra("kw", k))) // s + 1))


def work(p: Primitive) -> tuple[float, float, float, float]:
    """(multiply-adds, bytes read, bytes written, weight bytes) of one kernel."""
    fam = family(p.op)
    ho, wo = out_hw(p)
    n_in = int(p.extra("n", 1) or 1)
    if fam in ("conv", "dwconv", "gconv"):
        kk = p.kernel * int(p.extra("kw", p.kernel))
        macs = p.c_out * ho * wo * (p.c_in / p.groups) * kk
        w_bytes = p.c_out * (p.c_in / p.groups) * kk * BYTES
        extra_in = p.c_out * ho * wo if "-add" in p.op else 0
        return macs, (p.c_in * p.h * p.w + extra_in) * BYTES, p.c_out * ho * wo * BYTES, w_bytes
    if fam == "bmm":  # (b, M, K) @ (b, K, N): c_in = K, c_out = N, h = M
        b = int(p.extra("b", 1) or 1)
        m, k, n = p.h * p.w, p.c_in, p.c_out
        return b * m * k * n, b * (m * k + k * n) * BYTES, b * m * n * BYTES, 0.0
    if fam == "fc":
        rows = int(p.extra("m", 1) or 1)
        return p.c_in * p.c_out * rows, p.c_in * rows * BYTES, p.c_out * rows * BYTES, p.c_in * p.c_out * BYTES
    if fam in ("pool", "gpool"):
        k = (p.h * p.w) if fam == "gpool" else p.kernel * p.kernel
        return p.c_in * ho * wo * k, p.c_in * p.h * p.w * BYTES, p.c_out * ho * wo * BYTES, 0.0
    if p.op == "se":
        mid = int(p.extra("mid", max(1, p.c_in // 4)))
        return p.c_in * p.h * p.w * 2 + 2 * p.c_in * mid, p.c_in * p.h * p.w * BYTES, p.c_out * p.h * p.w * BYTES, \
            2 * p.c_in * mid * BYTES
    size = p.c_in * p.h * p.w
    if fam == "concat":
        return p.c_out * p.h * p.w, p.c_out * p.h * p.w * BYTES, p.c_out * p.h * p.w * BYTES, 0.0
    if fam == "eltwise":
        return size * max(n_in - 1, 1), size * n_in * BYTES, p.c_out * p.h * p.w * BYTES, 0.0
    return size, size * BYTES, p.c_out * ho * wo * BYTES, 0.0


def _perm_inner(p: Primitive) -> float:
    """1 when a transpose moves the innermost axis (a strided gather, not a block copy)."""
    perm = str(p.extra("perm", "") or "").lstrip("p")
    return float(bool(perm) and perm[-1] != str(len(perm) - 1))


def _pad(c: int, block: int) -> float:
    return math.ceil(c / block) * block / c


def kernel_features(p: Primitive) -> np.ndarray:
    """The feature row of one kernel (see FEATURES)."""
    macs, b_in, b_out, b_w = work(p)
    ho, wo = out_hw(p)
    total = b_in + b_out + b_w
    act = _act(p)
    parts = p.op.split("-")
    first = parts[0]
    row = [
        math.log2(p.c_in), math.log2(p.c_out), math.log2(p.h), math.log2(p.w), p.kernel, p.stride,
        math.log2(p.groups), math.log2(ho * wo),
        math.log10(macs + 1), math.log10(b_in + 1), math.log10(b_out + 1), math.log10(b_w + 1),
        math.log10(total + 1), math.log10((macs + 1) / (total + 1)),
        float(p.c_in % 16 == 0), float(p.c_out % 16 == 0), _pad(p.c_in, 16), _pad(p.c_out, 16), _pad(p.c_in, 8),
        float("add" in parts[1:]), float("bn" in parts), float(p.extra("n", 1) or 1),
        math.log2(int(p.extra("mid", 1) or 1)), {"in": 1.0, "out": 0.0}.get(str(p.extra("dir", "")), 0.5),
        float(p.extra("bcast", 0) or 0), float(p.extra("kw", p.kernel)), float(p.extra("dil", 1) or 1),
        math.log2(int(p.extra("m", 1) or 1)), float(OPS.index(first)) if first in OPS else -1.0,
        *(float(act == a) for a in ACT_NAMES),
        math.log2(int(p.extra("b", 1) or 1)), _perm_inner(p), float(p.extra("ta", 0) or 0),
        float(p.extra("tb", 0) or 0), float("scale" in parts[1:]),
        float(p.c_in % 4 == 0), float(p.c_out % 4 == 0),
    ]
    return np.asarray(row, dtype=np.float64)


def feature_matrix(prims: list[Primitive]) -> np.ndarray:
    if not prims:
        return np.zeros((0, len(FEATURES)))
    return np.stack([kernel_features(p) for p in prims])
