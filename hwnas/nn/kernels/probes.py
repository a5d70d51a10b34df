"""Tiny ONNX graphs for measuring rules: one operator, or a pair, after a fixed prefix.

Why ONNX directly (``onnx.helper``) and not torch: the probes need operators torch
never exports in eval mode (a standalone BatchNormalization, a Clip with constant
bounds), exact control over node names (so profiled nodes can be traced), and no torch
import in the measuring process.

Every probe reads ``x`` (1, C, H, W), runs ``pre`` (3x3 convolution) and ``barrier`` (a
3x3 stride-1 max pool, which absorbs no neighbour) to produce ``t`` in the runtime's
preferred layout, then the operator(s) under test on ``t``, then ``post`` (another max
pool, or a fully connected layer for vectors). Vector probes (fully connected) continue
with a global pool and a flatten first. ``post`` matters: runtimes do not fuse a node
whose output is a graph output (ONNX Runtime merges a convolution and a HardSwish inside
MobileNetV3, but not when the HardSwish is the last node), so the ops under test must
sit inside the graph as they do in real models.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: Operators a probe can apply, by category name.
UNARY = ("relu", "relu6", "clip", "sigmoid", "hsigmoid", "hswish", "tanh", "leakyrelu", "bn")
_UNARY_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "hsigmoid": "HardSigmoid", "hswish": "HardSwish",
              "tanh": "Tanh", "leakyrelu": "LeakyRelu"}


class ProbeGraph:
    """Builder of a probe graph (see module docstring)."""

    def __init__(self, c: int, hw: int, *, c_in: int | None = None, seed: int = 0) -> None:
        from onnx import TensorProto, helper

        self.h, self.tp = helper, TensorProto
        self.rng = np.random.default_rng(seed)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.c_in = c_in or c
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, self.c_in, hw, hw])
        self.shapes["x"] = (1, self.c_in, hw, hw)

    # -- helpers ---------------------------------------------------------------------------
    def _w(self, name: str, shape: tuple[int, ...], scale: float = 0.1) -> str:
        from onnx import numpy_helper

        vals = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(vals, name))  # raw bytes: fast for large weights
        return name

    def _node(self, op: str, inputs: list[str], name: str, shape: tuple[int, ...], **attrs: Any) -> str:
        out = f"{name}_out"
        self.nodes.append(self.h.make_node(op, inputs, [out], name=name, **attrs))
        self.shapes[out] = shape
        return out

    # -- operators ---------------------------------------------------------------------------
    def conv(self, x: str, c_out: int, k: int = 3, groups: int = 1, name: str = "conv") -> str:
        """A convolution with a bias, as exporters write one after folding its batch norm."""
        n, c, hh, ww = self.shapes[x]
        w = self._w(f"{name}_w", (c_out, c // groups, k, k))
        b = self._w(f"{name}_bias", (c_out,))
        return self._node("Conv", [x, w, b], name, (n, c_out, hh, ww), kernel_shape=[k, k], pads=[k // 2] * 4,
                          group=groups)

    def pool(self, x: str, kind: str, name: str) -> str:
        n, c, hh, ww = self.shapes[x]
        if kind == "gap":
            return self._node("GlobalAveragePool", [x], name, (n, c, 1, 1))
        op = "MaxPool" if kind == "maxpool" else "AveragePool"
        return self._node(op, [x], name, (n, c, hh, ww), kernel_shape=[3, 3], pads=[1] * 4, strides=[1, 1])

    def unary(self, x: str, kind: str, name: str) -> str:
        shape = self.shapes[x]
        if kind in ("relu6", "clip"):
            lo = self.h.make_tensor(f"{name}_lo", self.tp.FLOAT, [], [0.0])
            hi = self.h.make_tensor(f"{name}_hi", self.tp.FLOAT, [], [6.0 if kind == "relu6" else 1.0])
            self.inits += [lo, hi]
            return self._node("Clip", [x, f"{name}_lo", f"{name}_hi"], name, shape)
        if kind == "bn":
            c = shape[1]
            ins = [x, self._w(f"{name}_s", (c,)), self._w(f"{name}_b", (c,)), self._w(f"{name}_m", (c,))]
            var = self.h.make_tensor(f"{name}_v", self.tp.FLOAT, [c], np.ones(c, np.float32))
            self.inits.append(var)
            return self._node("BatchNormalization", ins + [f"{name}_v"], name, shape)
        return self._node(_UNARY_OPS[kind], [x], name, shape)

    def binary(self, a: str, b: str, kind: str, name: str) -> str:
        if kind == "concat":
            n, c1, hh, ww = self.shapes[a]
            return self._node("Concat", [a, b], name, (n, c1 + self.shapes[b][1], hh, ww), axis=1)
        return self._node("Add" if kind == "add" else "Mul", [a, b], name, self.shapes[a])

    def fc(self, x: str, n_out: int, name: str) -> str:
        n, c = self.shapes[x][:2]
        return self._node("Gemm", [x, self._w(f"{name}_w", (n_out, c)), self._w(f"{name}_b", (n_out,))], name,
                          (n, n_out), transB=1)

    def flatten(self, x: str, name: str) -> str:
        n = self.shapes[x][0]
        return self._node("Flatten", [x], name, (n, int(np.prod(self.shapes[x][1:]))))

    def prefix(self, c: int, *, vector: bool = False) -> tuple[str, str]:
        """``pre`` and ``barrier``; returns (pre output, probe input t)."""
        pre = self.conv("x", c, 3, name="pre")
        t = self.pool(pre, "maxpool", "barrier")
        if vector:
            t = self.flatten(self.pool(t, "gap", "vgap"), "vflat")
        return pre, t

    def to_bytes(self, outputs: list[str], *, post: bool = True) -> bytes:
        """The model; with ``post`` each output first goes through a context node."""
        if post:
            outputs = [self.fc(o, self.shapes[o][1], f"post{i}") if len(self.shapes[o]) == 2
                       else self.pool(o, "maxpool", f"post{i}") for i, o in enumerate(outputs)]
        outs = [self.h.make_tensor_value_info(o, self.tp.FLOAT, list(self.shapes[o])) for o in outputs]
        graph = self.h.make_graph(self.nodes, "probe", [self.input], outs, self.inits)
        model = self.h.make_model(graph, opset_imports=[self.h.make_opsetid("", 17)])
        model.ir_version = 8
        return model.SerializeToString()


#: Context nodes around the ops under test (never timed as part of them).
PREFIX_NODES = ("pre", "barrier", "vgap", "vflat", "post0")


def apply(pg: ProbeGraph, op: str, x: str, other: str, name: str, c: int) -> str:
    """Apply a category ``op`` to ``x`` (``other``: second operand of binary ops)."""
    if op in UNARY:
        return pg.unary(x, op, name)
    if op in ("add", "mul", "concat"):
        return pg.binary(x, other, op, name)
    if op in ("swish", "hswish_mul"):  # x * sigmoid(x): the composite, as exporters write SiLU
        gate = pg.unary(x, "sigmoid" if op == "swish" else "hsigmoid", f"{name}_gate")
        return pg.binary(x, gate, "mul", name)
    if op == "scale":  # a per-channel constant multiply (layer scale)
        shape = pg.shapes[x]
        w = pg._w(f"{name}_s", (shape[1],) + (1,) * (len(shape) - 2))
        return pg._node("Mul", [x, w], name, shape)
    if op == "gelu":  # x * 0.5 * (1 + erf(x / sqrt 2)), as exporters write exact GELU
        shape = pg.shapes[x]
        consts = {}
        for key, val in (("r2", 1.4142135), ("one", 1.0), ("half", 0.5)):
            consts[key] = f"{name}_{key}"
            pg.inits.append(pg.h.make_tensor(consts[key], pg.tp.FLOAT, [], [val]))
        # the first node carries the probe's name: a fused Gelu is traced to a pattern's first node
        e = pg._node("Erf", [pg._node("Div", [x, consts["r2"]], name, shape)], f"{name}_erf", shape)
        y = pg._node("Mul", [x, pg._node("Add", [e, consts["one"]], f"{name}_add", shape)], f"{name}_mul", shape)
        return pg._node("Mul", [y, consts["half"]], f"{name}_half", shape)
    if op in ("maxpool", "avgpool", "gap"):
        return pg.pool(x, op, name)
    if op == "fc":
        return pg.fc(x, c, name)
    groups = {"conv": 1, "dwconv": pg.shapes[x][1], "gconv": 2}[op]
    return pg.conv(x, c if op != "dwconv" else pg.shapes[x][1], 1 if op == "conv" else 3, groups, name)
