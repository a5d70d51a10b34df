"""What each ONNX node is, as far as latency goes: its category, and the Primitive that
records a kernel's configuration.

Why categories: a predictor cannot learn one model per ONNX op type and attribute
combination; it learns per kernel family (convolution, depthwise convolution,
elementwise, pooling, ...) from the configuration that decides the cost: channels,
spatial size, kernel, stride, groups, and what was fused in. A ``Clip(0, 6)`` and a
``Relu6`` are the same kernel; a ``MatMul`` with a constant weight is a fully connected
layer. Unknown op types keep their own category (``op_<type>``), so a graph with them
still imports and the predictor can name them when it has no data for them.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from hwnas.nn.onnx_graph import OpGraph, OpNode
from hwnas.primitives import ACTIVATIONS, Primitive

#: Unary activations a producer may absorb (fusion is measured, see hwnas/profilers/fusion.py).
ACTS: tuple[str, ...] = ("relu", "relu6", "clip", "sigmoid", "hsigmoid", "hswish", "tanh", "leakyrelu")
#: Anchors of fused groups: what an activation / bn / add can be fused into.
CONVS: tuple[str, ...] = ("conv", "dwconv", "gconv")
_SIMPLE = {
    "Relu": "relu", "Sigmoid": "sigmoid", "HardSigmoid": "hsigmoid", "HardSwish": "hswish", "Tanh": "tanh",
    "LeakyRelu": "leakyrelu", "BatchNormalization": "bn", "MaxPool": "maxpool", "AveragePool": "avgpool",
    "GlobalAveragePool": "gap", "GlobalMaxPool": "gmp", "Gemm": "fc", "Concat": "concat", "Split": "split",
    "Slice": "slice", "Reshape": "reshape", "Flatten": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape",
    "Transpose": "transpose", "Pad": "pad", "Resize": "resize", "Upsample": "resize", "Softmax": "softmax",
    "LogSoftmax": "softmax", "Cast": "cast", "Elu": "elu", "Selu": "selu", "Softplus": "softplus",
    "Gelu": "gelu", "Mish": "mish", "Erf": "erf", "Sqrt": "sqrt", "Exp": "exp", "Neg": "neg",
    "LayerNormalization": "layernorm", "Gather": "gather", "Reciprocal": "reciprocal",
}
_BINARY = {"Add": "add", "Sum": "add", "Mul": "mul", "Sub": "sub", "Div": "div", "Pow": "pow", "Max": "max",
           "Min": "min"}


def _clip_bounds(g: OpGraph, node: OpNode) -> tuple[float | None, float | None]:
    if "min" in node.attrs or "max" in node.attrs:  # opset < 11
        return node.attr("min"), node.attr("max")
    vals = []
    for t in node.inputs[1:3]:
        v = g.value(t) if t else None
        vals.append(float(v.reshape(-1)[0]) if v is not None and v.size else None)
    vals += [None] * (2 - len(vals))
    return vals[0], vals[1]


def category(g: OpGraph, node: OpNode) -> str:
    """The latency category of one node (see module docstring)."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return f"op_{node.domain.replace('.', '_')}_{op.lower()}"
    if op == "Conv":
        groups = int(node.attr("group", 1))
        c_in = g.shape(node.inputs[0])[1]
        c_out = g.shape(node.outputs[0])[1]
        if groups == 1:
            return "conv"
        return "dwconv" if groups == c_in == c_out else "gconv"
    if op == "Clip":
        lo, hi = _clip_bounds(g, node)
        return "relu6" if lo == 0 and hi == 6 else "relu" if lo == 0 and hi is None else "clip"
    if op in _BINARY:
        data = g.data_inputs(node)
        if len(data) >= 2:
            return _BINARY[op]
        return "scale"  # with a constant operand: an affine map of one tensor
    if op == "MatMul":  # a constant weight: a linear layer (over tokens); two activations: batched matmul
        return "fc" if len(g.data_inputs(node)) == 1 else "matmul"
    if op in ("ReduceMean", "ReduceMax"):
        x, y = g.shape(node.inputs[0]), g.shape(node.outputs[0])
        pooled = len(x) == 4 and math.prod(y) == x[0] * x[1]  # over H and W, keepdims or not
        return ("gap" if op == "ReduceMean" else "gmp") if pooled else "reduce"
    if op == "ConvTranspose":
        return "deconv"
    return _SIMPLE.get(op, f"op_{op.lower()}")


def chw(shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) of an activation: batch dropped, missing dims 1 (a vector is C x 1 x 1)."""
    dims = [max(int(d), 1) for d in shape[1:]] if len(shape) > 1 else [max(int(d), 1) for d in shape]
    if len(dims) > 3:
        dims = dims[:2] + [math.prod(dims[2:])]
    dims += [1] * (3 - len(dims))
    return dims[0], dims[1], dims[2]


def _conv_fields(node: OpNode, extras: dict[str, Any]) -> dict[str, Any]:
    ks = tuple(node.attr("kernel_shape", (1, 1)))
    st = tuple(node.attr("strides", (1, 1)))
    pads = tuple(node.attr("pads", (0,) * (2 * len(ks))))
    dil = tuple(node.attr("dilations", (1,) * len(ks)))
    if len(ks) > 1 and ks[1] != ks[0]:
        extras["kw"] = int(ks[1])
    if len(st) > 1 and st[1] != st[0]:
        extras["sw"] = int(st[1])
    if pads and pads[0] != ks[0] // 2:
        extras["pad"] = int(pads[0])
    if any(d != 1 for d in dil):
        extras["dil"] = int(dil[0])
    if node.attr("ceil_mode", 0):
        extras["ceil"] = 1
    return {"kernel": int(ks[0]), "stride": int(st[0])}


def kernel_primitive(g: OpGraph, nodes: Sequence[OpNode], op: str, *, extras: dict[str, Any] | None = None) -> Primitive:
    """The Primitive of a kernel made of ``nodes`` (first = anchor, last = output)."""
    anchor, last = nodes[0], nodes[-1]
    data = g.data_inputs(anchor) or [t for t in anchor.inputs if t]
    ex: dict[str, Any] = dict(extras or {})
    c_in, h, w = chw(g.shape(data[0])) if data else (1, 1, 1)
    out_shape = g.shape(last.outputs[0])
    c_out = chw(out_shape)[0]
    kw: dict[str, Any] = {}
    parts = op.split("-")
    if parts[0] in CONVS or parts[0] in ("maxpool", "avgpool", "deconv"):
        kw = _conv_fields(anchor, ex)
    if parts[0] in CONVS:
        kw["groups"] = int(anchor.attr("group", 1))
    elif parts[0] == "fc":
        x = g.shape(data[0])
        c_in, h, w = int(x[-1]), 1, 1
        c_out = int(out_shape[-1])
        rows = int(np.prod(x[:-1])) if len(x) > 1 else 1
        if rows > 1:
            ex["m"] = rows
    elif parts[0] in TOKEN_OPS:
        c_in, c_out, h, w = _token_fields(g, anchor, data, parts[0], ex)
    elif parts[0] == "bn" and data and _flat_rows(g.shape(data[0])) > 1:
        # a batch norm over flattened tokens ([rows, C]: LeViT's Linear + BatchNorm1d) has its
        # rows where chw() expects the batch; they are its work (h), and ``m`` marks the form:
        # ONNX Runtime runs it about twice as fast as a 2-D norm of as many elements
        c_in, h, w = int(g.shape(data[0])[1]), _flat_rows(g.shape(data[0])), 1
        c_out, ex["m"] = c_in, h
    elif parts[0] in ("concat", "add", "mul", "split", "slice") or op == "add":
        n_in = len(g.data_inputs(anchor)) if parts[0] != "split" else len([t for t in anchor.outputs if t])
        if n_in > 2 or parts[0] in ("concat", "split"):
            ex["n"] = n_in
        if parts[0] in ("add", "mul") and len({g.shape(t) for t in g.data_inputs(anchor)}) > 1:
            ex["bcast"] = 1
        if parts[0] == "concat":
            c_in = min(chw(g.shape(t))[0] for t in g.data_inputs(anchor))
    act = next((p for p in reversed(parts) if p in ACTIVATIONS and p != "none"), "none")
    return Primitive(op, int(c_in), int(c_out), int(h), int(w), act=act,
                     extras={k: ex[k] for k in sorted(ex)}, **kw)


def _flat_rows(shape: Sequence[int]) -> int:
    """Rows of a 2-D ``[rows, C]`` activation (models run at batch 1, so a first dimension
    above 1 is flattened tokens, not a batch); 1 for any other shape."""
    return int(shape[0]) if len(shape) == 2 and int(shape[0]) > 1 else 1


#: Kernels over token tensors (or any axis): shaped by the axis they work along, not by NCHW.
TOKEN_OPS: tuple[str, ...] = ("layernorm", "softmax", "matmul", "transpose", "reduce")


def _rows(shape: Sequence[int], axis: int) -> tuple[int, int]:
    """(length of ``axis``, product of the other dims) of a tensor."""
    dims = [max(int(d), 1) for d in shape] or [1]
    axis = axis % len(dims)
    return dims[axis], max(1, math.prod(dims) // dims[axis])


def _token_fields(g: OpGraph, anchor: OpNode, data: list[str], cat: str, ex: dict[str, Any]) -> tuple[int, int, int, int]:
    """(c_in, c_out, h, w) of a kernel along one axis: c = the axis' length (normalised size,
    softmax length, reduction length, contraction K), h = rows (every other element), w = 1.
    Batched matmuls: c_in = K, c_out = N, h = M, and the batch count ``b`` as an extra."""
    x = g.shape(data[0]) if data else (1,)
    if cat == "matmul":
        y = g.shape(data[1]) if len(data) > 1 else x
        m, k, n = x[-2] if len(x) > 1 else 1, x[-1], y[-1]  # as the matmul sees them (after absorbed transposes)
        out = g.shape(anchor.outputs[0])
        batch = max(1, math.prod(int(d) for d in out[:-2])) if len(out) > 2 else 1
        if batch > 1:
            ex["b"] = int(batch)
        return int(k), int(n), int(m), 1
    if cat == "transpose":
        perm = [int(a) for a in anchor.attr("perm", list(range(len(x)))[::-1])]
        ex["perm"] = "p" + "".join(str(a) for a in perm)  # a prefix keeps it a string in keys
        c, rows = _rows(x, -1)
        return c, c, rows, 1
    if cat == "reduce":
        axes = anchor.attr("axes", None)
        if axes is None and len(anchor.inputs) > 1 and anchor.inputs[1]:
            v = g.value(anchor.inputs[1])
            axes = [int(a) for a in v.reshape(-1)] if v is not None else None
        axis = int(axes[0]) if axes else -1
        c, rows = _rows(x, axis)
        if axis % max(len(x), 1) != len(x) - 1:
            ex["axis"] = int(axis % max(len(x), 1))
        return c, 1, rows, 1
    if cat == "layernorm" and anchor.op_type == "LayerNormalization":  # normalised over dims axis..last
        a = int(anchor.attr("axis", -1)) % max(len(x), 1)
        c = max(1, math.prod(int(d) for d in x[a:]))
        return c, c, max(1, math.prod(int(d) for d in x) // c), 1
    axis = int(anchor.attr("axis", -1)) if cat == "softmax" else -1
    c, rows = _rows(x, axis)
    return c, c, rows, 1


#: Kernel op (first part) -> the kernel-job block family whose random networks contain it,
#: so a predictor without data for an op can say what to add to the kernel job.
KERNEL_JOB_FAMILY: dict[str, str] = {
    "layernorm": "vit", "softmax": "vit", "matmul": "vit", "gelu": "vit", "gather": "vit", "transpose": "vit",
    "reshape": "vit", "split": "window", "slice": "window", "concat": "window", "reduce": "convnext",
    "sub": "convnext", "div": "convnext", "pow": "convnext", "sqrt": "convnext", "erf": "convnext",
    "scale": "convnext", "hswish": "levit", "bn": "levit", "avgpool": "poolmixer", "se": "mbconv_se",
    "swish": "mbconv", "dwconv": "dwsep", "conv": "plain", "gconv": "bottleneck", "fc": "vit", "add": "basic",
    "mul": "mbconv_se", "channel_shuffle": "shuffle", "maxpool": "pools", "gap": "pools", "reorder": "plain",
}


def missing_kernel_hint(op: str) -> str:
    """What to do when a predictor has no model for kernel ``op``: the kernel-job block
    family that draws it, or a plain statement that no family builds it yet."""
    first = op.split("-")[0]
    fam = KERNEL_JOB_FAMILY.get(first)
    if fam is not None:
        return (f"draw block family {fam!r} in the kernel job (hwnas profile --kernels; it builds {first!r} "
                "kernels) and refit")
    return (f"no kernel-job block family builds {first!r} kernels yet: add one to "
            "hwnas/nn/kernels/synthetic.py (BLOCKS) that draws it, then rerun the kernel job and refit")


def reorder_primitive(shape: Sequence[int], direction: str, *, perm: str | None = None) -> Primitive:
    """A layout change of one tensor (``direction`` in: to blocked, out: back); ``perm``: the
    reorder also does a channels-last transpose it absorbed."""
    c, h, w = chw(shape)
    return Primitive("reorder", c, c, h, w, extras={"dir": direction, **({"perm": perm} if perm else {})})
