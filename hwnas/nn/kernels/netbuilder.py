"""Whole-network ONNX graphs built block by block, the way exporters write them.

Used by the kernel job to draw random networks in milliseconds (a torch export of one
network takes seconds). The graphs follow what ``torch.onnx.export`` writes for the same
blocks in eval mode: convolutions with a bias (batch norm folded), activations as their
own nodes (``Clip`` with constant bounds for ReLU6, ``Sigmoid`` + ``Mul`` for SiLU),
``Slice`` pairs for ``chunk``, ``Reshape``-``Transpose``-``Reshape`` for a channel
shuffle, standalone ``BatchNormalization`` where a norm precedes its convolution
(DenseNet), ``Gemm`` classifiers. Weights are He-initialised so activations keep their
scale through deep stacks (denormal numbers would slow kernels down).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.nn.kernels.probes import ProbeGraph


class NetBuilder(ProbeGraph):
    """A ProbeGraph with network blocks; names are unique per call (``n12_conv``)."""

    def __init__(self, c_in: int, hw: int, seed: int = 0) -> None:
        super().__init__(c_in, hw, c_in=c_in, seed=seed)
        self.count = 0

    def uid(self, kind: str) -> str:
        self.count += 1
        return f"n{self.count}_{kind}"

    def _w(self, name: str, shape: tuple[int, ...], scale: float = 0.0) -> str:  # He init by fan-in
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return super()._w(name, shape, scale or float(np.sqrt(2.0 / max(fan_in, 1))) * 0.7)

    # -- units ------------------------------------------------------------------------------
    def conv_act(self, x: str, c_out: int, k: int = 3, s: int = 1, groups: int = 1, a: str = "relu") -> str:
        n, c, hh, ww = self.shapes[x]
        name = self.uid("conv")
        w = self._w(f"{name}_w", (c_out, c // groups, k, k))
        b = super()._w(f"{name}_bias", (c_out,), 0.01)
        ho, wo = (hh + 2 * (k // 2) - k) // s + 1, (ww + 2 * (k // 2) - k) // s + 1
        y = self._node("Conv", [x, w, b], name, (n, c_out, ho, wo), kernel_shape=[k, k], pads=[k // 2] * 4,
                       strides=[s, s], group=groups)
        return self.act(y, a)

    def act(self, x: str, a: str) -> str:
        if a == "none":
            return x
        if a == "swish":
            g = self.unary(x, "sigmoid", self.uid("sig"))
            return self.binary(x, g, "mul", self.uid("mul"))
        return self.unary(x, a, self.uid(a))

    def bn(self, x: str) -> str:
        return self.unary(x, "bn", self.uid("bn"))

    def add(self, a: str, b: str) -> str:
        return self.binary(a, b, "add", self.uid("add"))

    def concat(self, xs: Sequence[str]) -> str:
        n, _, hh, ww = self.shapes[xs[0]]
        c = sum(self.shapes[t][1] for t in xs)
        return self._node("Concat", list(xs), self.uid("concat"), (n, c, hh, ww), axis=1)

    def pool2(self, x: str, kind: str = "maxpool", k: int = 3, s: int = 2) -> str:
        n, c, hh, ww = self.shapes[x]
        p = k // 2 if k % 2 else 0
        ho, wo = (hh + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1
        op = "MaxPool" if kind == "maxpool" else "AveragePool"
        return self._node(op, [x], self.uid(kind), (n, c, ho, wo), kernel_shape=[k, k], pads=[p] * 4, strides=[s, s])

    def const_i64(self, values: Sequence[int]) -> str:
        name = self.uid("const")
        self.inits.append(self.h.make_tensor(name, self.tp.INT64, [len(values)], list(values)))
        return name

    def chunk2(self, x: str) -> tuple[str, str]:
        """``x.chunk(2, dim=1)`` as two Slices (what the exporter writes)."""
        n, c, hh, ww = self.shapes[x]
        half = c // 2
        axes = self.const_i64([1])
        outs = []
        for lo, hi in ((0, half), (half, c)):
            outs.append(self._node("Slice", [x, self.const_i64([lo]), self.const_i64([hi]), axes],
                                   self.uid("slice"), (n, hi - lo, hh, ww)))
        return outs[0], outs[1]

    def shuffle(self, x: str, groups: int = 2) -> str:
        n, c, hh, ww = self.shapes[x]
        r1 = self._node("Reshape", [x, self.const_i64([n, groups, c // groups, hh, ww])], self.uid("reshape"),
                        (n, groups, c // groups, hh, ww))
        t = self._node("Transpose", [r1], self.uid("transpose"), (n, c // groups, groups, hh, ww), perm=[0, 2, 1, 3, 4])
        return self._node("Reshape", [t, self.const_i64([n, c, hh, ww])], self.uid("reshape"), (n, c, hh, ww))

    def se(self, x: str, mid: int, a: str = "relu", gate: str = "hsigmoid") -> str:
        p = self.pool(x, "gap", self.uid("gap"))
        r = self.conv_act(p, mid, 1, a=a)
        g = self.conv_act(r, self.shapes[x][1], 1, a=gate)
        return self.binary(x, g, "mul", self.uid("semul"))

    def head(self, x: str, classes: int, hidden: int = 0, a: str = "relu") -> str:
        y = self.flatten(self.pool(x, "gap", self.uid("gap")), self.uid("flatten"))
        if hidden:
            y = self.act(self.fc(y, hidden, self.uid("fc")), a)
        return self.fc(y, classes, self.uid("fc"))

    # -- blocks -----------------------------------------------------------------------------
    def mbconv(self, x: str, c_out: int, k: int, s: int, mid: int, a: str, se_mid: int = 0,
               gate: str = "hsigmoid") -> str:
        c = self.shapes[x][1]
        y = self.conv_act(x, mid, 1, a=a) if mid != c else x
        y = self.conv_act(y, mid, k, s, groups=mid, a=a)
        if se_mid:
            y = self.se(y, se_mid, "swish" if a == "swish" else "relu", gate)
        y = self.conv_act(y, c_out, 1, a="none")
        return self.add(x, y) if s == 1 and c == c_out else y

    def basic(self, x: str, c_out: int, s: int) -> str:
        y = self.conv_act(self.conv_act(x, c_out, 3, s), c_out, 3, a="none")
        short = self.conv_act(x, c_out, 1, s, a="none") if s != 1 or self.shapes[x][1] != c_out else x
        return self.act(self.add(y, short), "relu")

    def bottleneck(self, x: str, mid: int, c_out: int, s: int, groups: int = 1) -> str:
        y = self.conv_act(self.conv_act(x, mid, 1), mid, 3, s, groups=groups)
        y = self.conv_act(y, c_out, 1, a="none")
        short = self.conv_act(x, c_out, 1, s, a="none") if s != 1 or self.shapes[x][1] != c_out else x
        return self.act(self.add(y, short), "relu")

    def shuffle_unit(self, x: str, c_out: int, s: int) -> str:
        half = c_out // 2
        if s == 1:
            a, b = self.chunk2(x)
            b = self.conv_act(self.conv_act(self.conv_act(b, half, 1), half, 3, 1, half, "none"), half, 1)
            return self.shuffle(self.concat([a, b]))
        c = self.shapes[x][1]
        b1 = self.conv_act(self.conv_act(x, c, 3, 2, c, "none"), half, 1)
        b2 = self.conv_act(self.conv_act(self.conv_act(x, half, 1), half, 3, 2, half, "none"), half, 1)
        return self.shuffle(self.concat([b1, b2]))

    def dense_layer(self, x: str, growth: int) -> str:
        y = self.act(self.bn(x), "relu")
        y = self.conv_act(y, 4 * growth, 1, a="relu")
        return self.concat([x, self.conv_act(y, growth, 3, a="none")])

    def transition(self, x: str, c_out: int) -> str:
        y = self.conv_act(self.act(self.bn(x), "relu"), c_out, 1, a="none")
        return self.pool2(y, "avgpool", 2, 2)

    def fire(self, x: str, squeeze: int, expand: int) -> str:
        s = self.conv_act(x, squeeze, 1)
        return self.concat([self.conv_act(s, expand, 1), self.conv_act(s, expand, 3)])

    def nb201_cell(self, x: str, ops: Sequence[str]) -> str:
        c = self.shapes[x][1]
        nodes, e = [x], 0
        for j in range(1, 4):
            terms = []
            for i in range(j):
                op = ops[e]
                e += 1
                if op == "none":
                    continue
                if op == "skip_connect":
                    terms.append(nodes[i])
                elif op == "avg_pool_3x3":
                    terms.append(self.pool(nodes[i], "avgpool", self.uid("avgpool")))
                else:
                    k = 3 if op == "nor_conv_3x3" else 1
                    terms.append(self.conv_act(self.act(nodes[i], "relu"), c, k, a="none"))
            if not terms:
                terms = [nodes[0]]
            y = terms[0]
            for t in terms[1:]:
                y = self.add(y, t)
            nodes.append(y)
        return nodes[-1]
