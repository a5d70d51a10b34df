"""Probe graphs for the transformer-era rules: each pattern or operator pair on tokens,
between a fixed context, written as exporters write it (tokenbuilder.py).

A probe reads ``x`` (1, C, H, W), runs a convolution, a max pool and ``flatten(2).
transpose(1, 2)`` to get tokens (1, H*W, C), builds the ops under test, then a linear
layer behind a tanh (``post``; the tanh keeps a trailing scale from being folded into
the post matmul) so that they sit inside the graph as in real models. The nodes built
for the ops under test are the probe's *region*; what the runtime executes for the region
(hwnas/profilers/token_rules.py) decides the rule.
"""
from __future__ import annotations

from typing import Callable

from hwnas.nn.kernels.tokenbuilder import TokenBuilder

#: Probe width and positions (tokens = HW * HW); small so every probe compiles in milliseconds.
C, HW = 64, 7


# left side -> builder of the left side's nodes; they read the tokens t (and a second activation).
LEFT: dict[str, Callable[[TokenBuilder, str, str], str]] = {
    "fc": lambda tb, t, o: tb.linear(t, C, bias=False),
    "fc-scale": lambda tb, t, o: tb.linear(t, C, bias=True),
    "matmul": lambda tb, t, o: tb.op("MatMul", [t, tb.transpose(o, (0, 2, 1))], (1, HW * HW, HW * HW)),
    "add": lambda tb, t, o: tb.add(t, o),
    "scale": lambda tb, t, o: tb.op("Add", [t, tb.const_f([0.1] * C)], tb.shapes[t]),
    "layernorm": lambda tb, t, o: tb.layernorm(t),
    "reshape": lambda tb, t, o: tb.reshape(t, (1, HW, HW, C)),
    "reshape-reshape": lambda tb, t, o: tb.reshape(tb.reshape(t, (1, HW, HW, C)), (1, HW, HW * C)),
}
RIGHT: dict[str, Callable[[TokenBuilder, str], str]] = {
    "scale": lambda tb, y: tb.op("Mul", [y, tb.const_f(0.125)], tb.shapes[y]),
    "bias": lambda tb, y: tb.op("Add", [y, tb.const_f([0.1] * tb.shapes[y][-1])], tb.shapes[y]),
    "relu": lambda tb, y: tb.act(y, "relu"),
    "gelu": lambda tb, y: tb.gelu(y),
    "layernorm": lambda tb, y: tb.layernorm(y),
    "softmax": lambda tb, y: tb.op("Softmax", [y], tb.shapes[y], axis=-1),
    "hswish": lambda tb, y: tb.act(y, "hswish"),
    "reshape": lambda tb, y: tb.reshape(y, (1, HW * HW, C)),
}
#: Token pairs measured by default: ``left>right`` (``bias``/``scale`` are detected as ``scale``).
TOKEN_PAIRS: tuple[tuple[str, str], ...] = (
    ("fc", "bias"), ("fc-scale", "relu"), ("fc-scale", "gelu"), ("fc-scale", "hswish"), ("fc-scale", "scale"),
    ("matmul", "scale"), ("matmul", "softmax"), ("add", "layernorm"), ("scale", "gelu"), ("layernorm", "scale"),
    ("reshape", "reshape"), ("reshape-reshape", "reshape"),
)


def _pattern_ops(tb: TokenBuilder, name: str, t: str, other: str) -> str:
    if name == "layernorm":
        return tb.layernorm(t, decomposed=True)
    if name == "layernorm_c1":  # a hand-written channels-first norm on the 4D map
        return tb.channel_norm(other)
    if name == "gelu":
        return tb.gelu(t, "erf")
    if name == "gelu_tanh":
        return tb.gelu(t, "tanh")
    if name == "gather_split":
        b, n, d = tb.shapes[t]
        qkv = tb.transpose(tb.reshape(tb.linear(t, 3 * d, bias=False), (b, n, 3, 2, d // 2)), (2, 0, 3, 1, 4))
        idx = [tb.uid("idx") for _ in range(3)]
        for i, nm in enumerate(idx):
            tb.inits.append(tb.h.make_tensor(nm, tb.tp.INT64, [], [i]))
        q, k, v = (tb.op("Gather", [qkv, i], (b, 2, n, d // 2), axis=0) for i in idx)
        return tb.add(tb.add(q, k), v)
    if name == "transpose_reorder_in":  # tokens back to NCHW, into a convolution (blocked layout)
        return tb.conv_act(tb.from_tokens(t, HW, HW), C, 3, a="none")
    if name == "transpose_reorder_out":  # a convolution's output to channels-last, into a layer norm
        return tb.layernorm(tb.transpose(tb.conv_act(other, C, 3, a="none"), (0, 2, 3, 1)))
    if name == "transpose_cancel":  # tokens -> NCHW -> tokens with nothing between (hybrid stages)
        return tb.to_tokens(tb.from_tokens(t, HW, HW))
    if name == "matmul_transpose":
        return tb.op("MatMul", [t, tb.transpose(other, (0, 2, 1))], (1, HW * HW, HW * HW))
    if name == "matmul_scale":
        q = tb.op("Mul", [t, tb.const_f(0.125)], tb.shapes[t])
        return tb.op("MatMul", [q, other], (1, HW * HW, HW * HW))
    raise KeyError(name)


#: Structural patterns measured by default (token_patterns.PATTERNS plus forms that are only checked).
PATTERN_PROBES: tuple[str, ...] = ("layernorm", "layernorm_c1", "gelu", "gelu_tanh", "gather_split",
                                   "matmul_transpose", "matmul_scale", "transpose_reorder_in",
                                   "transpose_reorder_out", "transpose_cancel")


#: Per pattern, the op type whose disappearance from the executed region shows the merge.
VANISHES: dict[str, str] = {"layernorm": "ReduceMean", "layernorm_c1": "ReduceMean", "gelu": "Erf",
                            "gelu_tanh": "Tanh", "gather_split": "Gather", "matmul_transpose": "Transpose",
                            "matmul_scale": "Mul", "transpose_reorder_in": "Transpose",
                            "transpose_reorder_out": "Transpose", "transpose_cancel": "Transpose"}


def _context(name: str) -> tuple[TokenBuilder, str, str, str]:
    tb = TokenBuilder(C, HW * 2)
    pre = tb.pool2(tb.conv_act("x", C, 3, a="none"), "maxpool", 3, 2)
    t = tb.to_tokens(pre)
    other = tb.linear(t, C, bias=False)
    if name == "matmul_scale":  # k^T computed apart (a transpose that does not belong to the pattern)
        other = tb.transpose(other, (0, 2, 1))
        other = tb.op("Add", [other, tb.const_f(0.5)], tb.shapes[other])
    return tb, pre, t, other


def _finish(tb: TokenBuilder, y: str, start: int) -> tuple[bytes, set[str]]:
    region = {n.name for n in tb.nodes[start:]}
    if len(tb.shapes[y]) == 4 and tb.shapes[y][1] == C and tb.shapes[y][2] == tb.shapes[y][3]:
        y = tb.to_tokens(y)
    y = tb.linear(tb.act(y, "tanh"), C, bias=False)  # tanh: nothing before it is absorbed into the post matmul
    return tb.to_bytes([y], post=False), region


def pattern_probe(name: str) -> tuple[bytes, set[str]]:
    """(model bytes, names of the region's nodes) of a structural pattern (PATTERN_PROBES)."""
    tb, pre, t, other = _context(name)
    start = len(tb.nodes)
    y = _pattern_ops(tb, name, other if name == "transpose_cancel" else t,
                     other if name.startswith("matmul") else pre)
    if len(tb.shapes[y]) == 4 and name == "transpose_reorder_out":
        y = tb.reshape(y, (1, HW * HW, C))
    return _finish(tb, y, start)


def pair_probe(left: str | None, right: str | None) -> tuple[bytes, set[str]]:
    """(model bytes, region node names) of ``left`` then ``right`` (either alone when the other is None)."""
    tb, _, t, other = _context("")
    start = len(tb.nodes)
    y = LEFT[left](tb, t, other) if left else t
    if right:
        y = RIGHT[right](tb, y)
    return _finish(tb, y, start)
