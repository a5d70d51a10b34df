"""Composite kernels found by their structure: squeeze-excite, swish, channel shuffle,
sibling slices (a split).

Why structure here and measurement elsewhere: these groups are several ONNX nodes that
only make sense together (the gate of an SE block is worthless without the multiply it
feeds), and on CPUs their cost is dominated by what happens around the multiply or the
transpose (layout reorders, a pass over the whole tensor), which a predictor learns best
from the group as a unit. Whether a *producer* absorbs its neighbour (convolution +
activation) is a property of the runtime and is measured instead (hwnas/profilers/fusion.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from hwnas.nn.kernels.catalog import category, chw
from hwnas.nn.kernels.token_patterns import find_token_composites
from hwnas.nn.onnx_graph import OpGraph

MAX_SE_NODES = 12


@dataclass
class Composite:
    op: str
    nodes: list[int]
    extras: dict[str, Any] = field(default_factory=dict)


def _only_consumer(g: OpGraph, tensor: str, node: int) -> bool:
    return g.consumers.get(tensor, []) == [node] and tensor not in g.outputs


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _se(g: OpGraph, j: int) -> Composite | None:
    """Mul(x, gate) whose gate is computed from a global pool of x through small tensors."""
    node = g.nodes[j]
    data = g.data_inputs(node)
    if node.op_type != "Mul" or len(data) != 2:
        return None
    a, b = data
    x, gate = (a, b) if _numel(g.shape(a)) >= _numel(g.shape(b)) else (b, a)
    xs = g.shape(x)
    if len(xs) != 4 or xs[2] * xs[3] <= 1 or _numel(g.shape(gate)) > xs[1] or gate not in g.producer:
        return None
    members: set[int] = set()
    stack, squeezes = [g.producer[gate]], 0
    while stack:
        k = stack.pop()
        if k in members:
            continue
        members.add(k)
        if len(members) > MAX_SE_NODES:
            return None
        for t in g.data_inputs(g.nodes[k]):
            if t == x:
                squeezes += category(g, g.nodes[k]) in ("gap", "gmp")
                continue
            if t not in g.producer or _numel(g.shape(t)) > xs[1]:
                return None
            stack.append(g.producer[t])
    if squeezes != 1:
        return None
    for k in members:  # nothing inside may leak out of the block
        for t in g.nodes[k].outputs:
            if t and (t in g.outputs or any(c not in members and c != j for c in g.consumers.get(t, []))):
                return None
    mid = min(chw(g.shape(t))[0] for k in members for t in g.nodes[k].outputs if t)
    gate_act = category(g, g.nodes[g.producer[gate]])
    return Composite("se", sorted(members) + [j], {"mid": mid, "gate": gate_act})


def _swish(g: OpGraph, j: int) -> Composite | None:
    """x * sigmoid(x) (SiLU), which runtimes run as one elementwise kernel."""
    node = g.nodes[j]
    data = g.data_inputs(node)
    if node.op_type != "Mul" or len(data) != 2:
        return None
    for s, x in (data, data[::-1]):
        k = g.producer.get(s)
        if k is not None and g.nodes[k].op_type in ("Sigmoid", "HardSigmoid") and g.data_inputs(g.nodes[k]) == [x] \
                and _only_consumer(g, s, j):
            return Composite("swish" if g.nodes[k].op_type == "Sigmoid" else "hswish", [k, j])
    return None


def _shuffle(g: OpGraph, j: int) -> Composite | None:
    """Reshape (N,C,H,W)->(N,g,C/g,H,W), Transpose(0,2,1,3,4), Reshape back."""
    r1 = g.nodes[j]
    if r1.op_type != "Reshape" or len(g.shape(r1.outputs[0])) != 5 or len(g.shape(r1.inputs[0])) != 4:
        return None
    t_idx = g.consumers.get(r1.outputs[0], [])
    if len(t_idx) != 1 or g.nodes[t_idx[0]].op_type != "Transpose":
        return None
    tr = g.nodes[t_idx[0]]
    if tuple(tr.attr("perm", ())) != (0, 2, 1, 3, 4) or not _only_consumer(g, r1.outputs[0], t_idx[0]):
        return None
    r_idx = g.consumers.get(tr.outputs[0], [])
    if len(r_idx) != 1 or g.nodes[r_idx[0]].op_type != "Reshape" or not _only_consumer(g, tr.outputs[0], r_idx[0]):
        return None
    if g.shape(g.nodes[r_idx[0]].outputs[0]) != g.shape(r1.inputs[0]):
        return None
    return Composite("channel_shuffle", [j, t_idx[0], r_idx[0]], {"g": int(g.shape(r1.outputs[0])[1])})


def _split(g: OpGraph, j: int) -> Composite | None:
    """Sibling Slices of one tensor along one axis (``chunk``), which runtimes run as one Split."""
    node = g.nodes[j]
    if node.op_type != "Slice" or not node.inputs or node.inputs[0] not in g.consumers:
        return None
    x = node.inputs[0]

    def axes(k: int) -> tuple[int, ...] | None:
        v = g.value(g.nodes[k].inputs[3]) if len(g.nodes[k].inputs) > 3 and g.nodes[k].inputs[3] else None
        return tuple(int(a) for a in v.reshape(-1)) if v is not None else None

    sibs = [k for k in g.consumers[x] if g.nodes[k].op_type == "Slice" and g.nodes[k].inputs[0] == x
            and axes(k) == axes(j)]
    if len(sibs) < 2 or min(sibs) != j:
        return None
    return Composite("split", sorted(sibs), {"n": len(sibs)})


def find_composites(g: OpGraph, merges: Callable[[str], bool] | None = None) -> list[Composite]:
    """Non-overlapping composites, SE first (it may contain a swish or hswish gate); with
    ``merges`` (the measured rules' ``merges``), the transformer patterns the runtime
    was measured to merge (token_patterns.py) come first."""
    taken: set[int] = set()
    out: list[Composite] = []
    if merges is not None:
        for op, nodes, extras in find_token_composites(g, merges):
            out.append(Composite(op, nodes, extras))
            taken.update(nodes)
    for finder in (_se, _shuffle, _split, _swish):
        for j in range(len(g.nodes)):
            if j in taken:
                continue
            c = finder(g, j)
            if c is not None and not taken.intersection(c.nodes):
                out.append(c)
                taken.update(c.nodes)
    return out
