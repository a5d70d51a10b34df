"""Transformer-era composites: decomposed layer norm, erf GELU, sibling Gathers, and the
transposes and scales a batched matmul absorbs.

Why each is gated by a measured rule (``FusionRules.merges``): whether the runtime runs
such a group as one node depends on the runtime and on the exact form the exporter wrote
(ONNX Runtime 1.32 on CPU merges torch's opset-13 layer-norm decomposition into one
``LayerNormalization`` and the erf form of GELU into one ``Gelu``, but leaves the tanh form
of GELU as nine nodes and a hand-written layer norm with a scalar gain untouched). The
probes in :mod:`hwnas.nn.kernels.token_probes` build each form and read back what the
runtime executes; a pattern becomes one kernel here only when that measurement said so,
otherwise its nodes stay kernels of their own, as the runtime runs them.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hwnas.nn.onnx_graph import OpGraph

#: Pattern names, as stored in the rules (``pattern:<name>``) and measured by the probes.
PATTERNS: tuple[str, ...] = ("layernorm", "gelu", "gather_split", "matmul_transpose", "matmul_scale",
                             "transpose_reorder_in", "transpose_reorder_out", "transpose_cancel")


def _sole(g: OpGraph, tensor: str) -> int | None:
    """The one consumer of ``tensor`` (None when several, none, or a graph output)."""
    users = g.consumers.get(tensor, [])
    return users[0] if len(users) == 1 and tensor not in g.outputs else None


def _const(g: OpGraph, node: Any) -> float | None:
    """The scalar constant operand of a binary node (None: not a scalar constant)."""
    for t in node.inputs:
        if t and g.is_const(t):
            v = g.value(t)
            if v is not None and v.size == 1:
                return float(v.reshape(-1)[0])
    return None


def _vector_const(g: OpGraph, node: Any, size: int) -> bool:
    """A binary node whose constant operand is a vector over the last axis (gain, bias)."""
    for t in node.inputs:
        if t and g.is_const(t):
            shape = g.shape(t) if t in g.shapes else ()
            return bool(shape) and int(shape[-1]) == size and int(np.prod(shape)) == size
    return False


def _last_axis(g: OpGraph, j: int) -> bool:
    node = g.nodes[j]
    x = g.shape(node.inputs[0])
    axes = node.attr("axes", None)
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        v = g.value(node.inputs[1])
        axes = None if v is None else [int(a) for a in v.reshape(-1)]
    return axes is not None and len(axes) == 1 and int(axes[0]) % len(x) == len(x) - 1


def _layernorm(g: OpGraph, j: int) -> tuple[list[int], dict[str, Any]] | None:
    """mean -> sub -> pow 2 -> mean -> add eps -> sqrt -> div (-> mul gain -> add bias), over the last axis."""
    m1 = g.nodes[j]
    if m1.op_type != "ReduceMean" or not _last_axis(g, j):
        return None
    x = m1.inputs[0]
    size = int(g.shape(x)[-1])
    sub = _sole(g, m1.outputs[0])
    if sub is None or g.nodes[sub].op_type != "Sub" or g.nodes[sub].inputs[0] != x:
        return None
    users = sorted(g.consumers.get(g.nodes[sub].outputs[0], []))
    ops = {g.nodes[u].op_type: u for u in users}
    if len(users) != 2 or set(ops) != {"Pow", "Div"}:
        return None
    chain, t = [ops["Pow"]], g.nodes[ops["Pow"]].outputs[0]
    for want in ("ReduceMean", "Add", "Sqrt"):
        k = _sole(g, t)
        if k is None or g.nodes[k].op_type != want:
            return None
        chain.append(k)
        t = g.nodes[k].outputs[0]
    if _sole(g, t) != ops["Div"] or not _last_axis(g, chain[1]):
        return None
    nodes, t = [j, sub, *chain, ops["Div"]], g.nodes[ops["Div"]].outputs[0]
    for want in ("Mul", "Add"):
        k = _sole(g, t)
        if k is None or g.nodes[k].op_type != want or not _vector_const(g, g.nodes[k], size):
            break
        nodes.append(k)
        t = g.nodes[k].outputs[0]
    return sorted(nodes), {}


def _gelu(g: OpGraph, j: int) -> tuple[list[int], dict[str, Any]] | None:
    """x * 0.5 * (1 + erf(x / sqrt 2)) in the orders exporters write."""
    erf = g.nodes[j]
    if erf.op_type != "Erf" or erf.inputs[0] not in g.producer:
        return None
    pre = g.producer[erf.inputs[0]]
    if g.nodes[pre].op_type not in ("Div", "Mul") or _const(g, g.nodes[pre]) is None:
        return None
    x = g.data_inputs(g.nodes[pre])[0]
    nodes, t = [pre, j], erf.outputs[0]
    if _sole(g, g.nodes[pre].outputs[0]) != j:
        return None
    saw_x = False
    while len(nodes) < 6:
        k = _sole(g, t)
        if k is None or g.nodes[k].op_type not in ("Add", "Mul"):
            break
        other = [i for i in g.data_inputs(g.nodes[k]) if i != t]
        if other and other != [x]:
            half = g.producer.get(other[0])  # (x * 0.5) computed on its own
            if half is None or g.nodes[half].op_type != "Mul" or g.data_inputs(g.nodes[half]) != [x] \
                    or _sole(g, other[0]) != k:
                break
            nodes.append(half)
        saw_x = saw_x or bool(other)
        nodes.append(k)
        t = g.nodes[k].outputs[0]
    return (sorted(nodes), {}) if saw_x and len(nodes) >= 4 else None


def _gather_split(g: OpGraph, j: int) -> tuple[list[int], dict[str, Any]] | None:
    """Sibling Gathers of one tensor with scalar indices on one axis (``q, k, v = qkv[0], qkv[1], qkv[2]``)."""
    node = g.nodes[j]
    if node.op_type != "Gather" or not g.data_inputs(node):
        return None
    x, axis = node.inputs[0], int(node.attr("axis", 0))

    def scalar(k: int) -> bool:
        n = g.nodes[k]
        v = g.value(n.inputs[1]) if len(n.inputs) > 1 and g.is_const(n.inputs[1]) else None
        return n.op_type == "Gather" and n.inputs[0] == x and int(n.attr("axis", 0)) == axis \
            and v is not None and v.ndim == 0

    sibs = sorted(k for k in g.consumers.get(x, []) if scalar(k))
    if len(sibs) < 2 or sibs[0] != j:
        return None
    k = g.producer.get(x)  # the permute before the picks is pushed past the split by the runtime
    if k is not None and g.nodes[k].op_type == "Transpose" and sorted(g.consumers.get(x, [])) == sibs \
            and x not in g.outputs:
        return [k, *sibs], {"n": len(sibs), "perm": "p" + "".join(str(int(a)) for a in g.nodes[k].attr("perm", []))}
    return sibs, {"n": len(sibs)}


def _absorbed(g: OpGraph, j: int, kind: str) -> tuple[list[int], dict[str, Any]] | None:
    """A batched MatMul with the transposes (last two axes swapped) or scalar scales that
    feed only it: runtimes fold them into the matmul (ONNX Runtime's FusedMatMul)."""
    node = g.nodes[j]
    data = g.data_inputs(node)
    if node.op_type != "MatMul" or len(data) != 2:
        return None
    nodes, extras = [j], {}
    for pos, t in enumerate(node.inputs[:2]):
        k = g.producer.get(t)
        if k is None or _sole(g, t) != j:
            continue
        n = g.nodes[k]
        if kind == "matmul_transpose" and n.op_type == "Transpose":
            perm = [int(a) for a in n.attr("perm", [])]
            if len(perm) >= 2 and perm[:-2] == list(range(len(perm) - 2)) and perm[-2:] == [len(perm) - 1, len(perm) - 2]:
                nodes.append(k)
                extras["ta" if pos == 0 else "tb"] = 1
        elif kind == "matmul_scale" and n.op_type in ("Mul", "Div") and _const(g, n) is not None \
                and len(g.data_inputs(n)) == 1:
            nodes.append(k)
    return (nodes, extras) if len(nodes) > 1 else None  # the matmul first: it is the kernel's anchor


FINDERS: dict[str, Callable[[OpGraph, int], tuple[list[int], dict[str, Any]] | None]] = {
    "layernorm": _layernorm, "gelu": _gelu, "gather_split": _gather_split,
}
#: The kernel op each pattern becomes.
KERNEL_OP = {"layernorm": "layernorm", "gelu": "gelu", "gather_split": "split", "matmul": "matmul"}


def find_token_composites(g: OpGraph, merges: Callable[[str], bool]) -> list[tuple[str, list[int], dict[str, Any]]]:
    """(kernel op, nodes, extras) of every pattern the measured rules say the runtime merges."""
    out: list[tuple[str, list[int], dict[str, Any]]] = []
    taken: set[int] = set()
    for name, finder in FINDERS.items():
        if not merges(name):
            continue
        for j in range(len(g.nodes)):
            found = None if j in taken else finder(g, j)
            if found is not None and not taken.intersection(found[0]):
                out.append((KERNEL_OP[name], *found))
                taken.update(found[0])
    kinds = [k for k in ("matmul_transpose", "matmul_scale") if merges(k)]
    for j in range(len(g.nodes)):
        nodes, extras = [j], {}
        for kind in kinds:
            found = _absorbed(g, j, kind)
            if found is not None:
                nodes += [n for n in found[0] if n != j]
                extras.update(found[1])
        if len(nodes) > 1 and not taken.intersection(nodes):
            out.append(("matmul", nodes, extras))
            taken.update(nodes)
    return out
