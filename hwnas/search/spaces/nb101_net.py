"""The NAS-Bench-101 network of a cell, as a graph of primitives.

The skeleton (Ying et al., 2019): a 3x3 conv-BN-ReLU stem, ``stacks`` stacks of
``cells_per_stack`` cells with a 2x2 max pool (stride 2) before every stack but the
first, where the channels double, then global average pooling and a classifier.

Inside a cell of ``C`` output channels (the paper's rules, written here from its text):

* the output concatenates the interior vertices that feed it; they share the ``C``
  channels evenly (the first ``C mod k`` of the ``k`` get one more);
* any other interior vertex gets the largest width among the interior vertices it feeds;
* an interior vertex's input is the sum of its inputs, each brought to its width: the
  cell input through a 1x1 conv-BN-ReLU projection, another vertex by truncation (keep
  the first channels; a vertex is never narrower than what it feeds), then the vertex's
  operation runs at that width;
* when the input feeds the output directly, its 1x1 projection to ``C`` is *added* to
  the concatenation (a residual path); a cell whose only edge is input->output is that
  projection alone.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.primitives import Primitive

#: The three operations: (name in the benchmark, primitive builder args).
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """Width of every vertex of a pruned cell (input ``c_in``, output ``c_out``)."""
    v = matrix.shape[0]
    ch = [0] * v
    ch[0], ch[v - 1] = c_in, c_out
    if v == 2:
        return ch
    feeding = [i for i in range(1, v - 1) if matrix[i, v - 1]]
    share, extra = divmod(c_out, len(feeding))
    for k, i in enumerate(feeding):
        ch[i] = share + (1 if k < extra else 0)
    for i in range(v - 3, 0, -1):
        if not matrix[i, v - 1]:
            ch[i] = max(ch[j] for j in range(i + 1, v - 1) if matrix[i, j])
    return ch


def op_primitive(op: int, c: int, r: int) -> Primitive:
    """The primitive of operation ``op`` (an index into :data:`OPS`) at width ``c``."""
    if OPS[op] == "maxpool3x3":
        return Primitive("pool", c, c, r, r, kernel=3, extras=(("mode", "max"),))
    return Primitive("conv", c, c, r, r, kernel=3 if op == 0 else 1, act="relu")


def projection(c_in: int, c_out: int, r: int) -> Primitive:
    return Primitive("conv", c_in, c_out, r, r, kernel=1, act="relu")


def add_cell(nodes: list[Primitive], edges: list[tuple[int, int]], src: int, c_in: int, c_out: int, r: int,
             cell: tuple[np.ndarray, Sequence[int]]) -> int:
    """Append the nodes of one cell reading node ``src``; returns the cell's output node."""
    matrix, ops = cell
    v = matrix.shape[0]
    ch = vertex_channels(c_in, c_out, matrix)

    def add(p: Primitive, preds: Sequence[int]) -> int:
        nodes.append(p)
        edges.extend((q, len(nodes) - 1) for q in preds)
        return len(nodes) - 1

    out_of: dict[int, int] = {0: src}
    for t in range(1, v - 1):
        inputs = []
        for s in range(t):
            if not matrix[s, t]:
                continue
            if s == 0:
                inputs.append(add(projection(c_in, ch[t], r), [src]))
            elif ch[s] > ch[t]:
                inputs.append(add(Primitive("truncate", ch[s], ch[t], r, r), [out_of[s]]))
            else:
                inputs.append(out_of[s])
        out_of[t] = add(op_primitive(int(ops[t - 1]), ch[t], r), inputs)
    feeding = [out_of[t] for t in range(1, v - 1) if matrix[t, v - 1]]
    if not feeding:
        return add(projection(c_in, c_out, r), [src])
    out = add(Primitive("concat", c_out, c_out, r, r), feeding)
    if matrix[0, v - 1]:
        out = add(Primitive("identity", c_out, c_out, r, r), [out, add(projection(c_in, c_out, r), [src])])
    return out


def cell_primitives(c_in: int, c_out: int, r: int, vertices: int, n_ops: int) -> list[Primitive]:
    """Every primitive a cell of ``vertices`` vertices can hold at these shapes: the widths
    an interior vertex can get are the shares ``c_out // k`` (+1) for k feeding vertices."""
    widths = sorted({c_out // k + e for k in range(1, vertices - 1) for e in (0, 1) if c_out // k + e >= 1})
    widths = [w for w in widths if w <= c_out]
    prims = [projection(c_in, c_out, r), Primitive("concat", c_out, c_out, r, r),
             Primitive("identity", c_out, c_out, r, r)]
    for w in widths:
        prims.append(projection(c_in, w, r))
        prims += [op_primitive(op, w, r) for op in range(n_ops)]
        prims += [Primitive("truncate", wide, w, r, r) for wide in widths if wide > w]
    return prims
