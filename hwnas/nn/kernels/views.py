"""Views and transposes as the runtime really runs them: chains of ``Reshape`` and
``Transpose`` are one data-movement kernel, transposes that cancel execute nothing, and a
channels-last transpose next to a layout reorder is done by the reorder.

Why post-passes over the detected kernels: these are decisions of the runtime's transpose
optimiser and of its blocked-layout pass (ONNX Runtime pushes a transpose through a split,
swaps it with a reshape, cancels a transpose with its inverse across reshapes, and lets
``ReorderInput``/``ReorderOutput`` read or write channels-last), which only make sense once
the layouts are known. Each is gated by a rule measured on probes
(``pattern:transpose_cancel``, ``pattern:transpose_reorder_in`` / ``_out``; see
hwnas/nn/kernels/token_probes.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hwnas.nn.kernels.catalog import category, reorder_primitive
from hwnas.nn.onnx_graph import OpGraph

if TYPE_CHECKING:
    from hwnas.nn.kernels.detect import Kernel
    from hwnas.nn.kernels.rules import FusionRules

#: Categories of view/transpose kernels (joined into one kernel when they follow each other).
VIEW_CATS = ("reshape", "transpose")
_VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")


def _channels_perm(perm: list[int], direction: str) -> bool:
    """A transpose between channels-last and channels-first (tokens (0,2,1) included)."""
    n = len(perm)
    if n < 3:
        return False
    first = [0, n - 1, *range(1, n - 1)]          # (N, ..., C) -> (N, C, ...)
    last = [0, *range(2, n), 1]                    # (N, C, ...) -> (N, ..., C)
    return perm == (first if direction == "in" else last)


def _view_kernel(g: OpGraph, k: "Kernel", direction: str) -> int | None:
    """The node of the one channels-last transpose of a pure view kernel, else None."""
    if k.tensor is not None or any(g.nodes[n].op_type not in _VIEW_OPS for n in k.nodes):
        return None
    tr = [n for n in k.nodes if g.nodes[n].op_type == "Transpose"]
    if len(tr) != 1 or not _channels_perm([int(a) for a in g.nodes[tr[0]].attr("perm", [])], direction):
        return None
    return tr[0]


def absorb_transposes(g: OpGraph, kernels: list["Kernel"], rules: "FusionRules") -> list["Kernel"]:
    """Reorders that do the channels-last transpose of the view kernel next to them, where
    the rules measured it: that kernel's nodes join the reorder kernel."""
    of_node = {n: i for i, k in enumerate(kernels) for n in k.nodes}
    drop: set[int] = set()
    for r in kernels:
        if r.tensor is None or r.nodes or not rules.merges(f"transpose_reorder_{r.extras['dir']}"):
            continue
        t, direction = r.tensor, r.extras["dir"]
        if direction == "in":  # view kernel -> t -> blocked consumer
            k = of_node.get(g.producer.get(t, -1))
            ok = k is not None and kernels[k].outputs == [t]
        else:  # blocked producer -> t -> view kernel
            users = g.consumers.get(t, [])
            k = of_node.get(users[0]) if len(users) == 1 else None
            ok = k is not None and kernels[k].inputs == [t]
        node = _view_kernel(g, kernels[k], direction) if ok and k is not None and k not in drop else None
        if node is None or k is None or (direction == "out" and node != kernels[k].nodes[0]):
            continue  # a reorder writes channels-last only for a transpose right behind it
        drop.add(k)
        r.nodes = list(kernels[k].nodes)
        perm = "p" + "".join(str(int(a)) for a in g.nodes[node].attr("perm", []))
        r.extras["perm"] = perm
        if direction == "out":  # the reorder writes the transposed tensor itself
            r.tensor = g.nodes[node].outputs[0]
            r.inputs, r.outputs = [t], list(kernels[k].outputs)
        r.prim = reorder_primitive(g.shape(t), direction, perm=perm)
    return [k for i, k in enumerate(kernels) if i not in drop]


def _cancel_chain(g: OpGraph, j: int) -> list[int] | None:
    """Transpose -> Reshape(s) -> Transpose that gives back its input's shape (a stage's
    tokens -> NCHW -> tokens with nothing between): the nodes of the chain, or None."""
    if g.nodes[j].op_type != "Transpose":
        return None
    chain, t = [j], g.nodes[j].outputs[0]
    while True:
        users = g.consumers.get(t, [])
        if len(users) != 1 or t in g.outputs or g.nodes[users[0]].op_type not in ("Reshape", "Transpose"):
            return None
        chain.append(users[0])
        t = g.nodes[users[0]].outputs[0]
        if g.nodes[users[0]].op_type == "Transpose":
            if len(chain) <= 2 or g.shape(t) != g.shape(g.nodes[j].inputs[0]):
                return None
            before = g.producer.get(g.nodes[j].inputs[0])  # a reshape just before merges with the one after
            while before is not None and g.nodes[before].op_type == "Reshape" \
                    and g.consumers.get(g.nodes[before].outputs[0], []) == [chain[0]]:
                chain.insert(0, before)
                before = g.producer.get(g.nodes[before].inputs[0])
            return chain


def cancel_transposes(g: OpGraph, kernels: list["Kernel"], rules: "FusionRules") -> list["Kernel"]:
    """Take the nodes of transpose pairs the runtime cancels (``pattern:transpose_cancel``)
    out of their kernels: they execute nothing; kernels left empty go."""
    if not rules.merges("transpose_cancel"):
        return kernels
    gone: set[int] = set()
    chains = []
    for j in range(len(g.nodes)):
        chain = None if j in gone else _cancel_chain(g, j)
        if chain is not None:
            gone.update(chain)
            chains.append(chain)
    out = []
    for k in kernels:
        if k.tensor is None and gone.intersection(k.nodes):
            k.nodes = [n for n in k.nodes if n not in gone]
            if not k.nodes:
                continue
            inside = {t for n in k.nodes for t in g.nodes[n].outputs}
            k.chain = [category(g, g.nodes[n]) for n in k.nodes]
            k.inputs = [t for n in k.nodes for t in g.data_inputs(g.nodes[n]) if t not in inside]
            k.outputs = [t for t in g.nodes[k.nodes[-1]].outputs if t]
        out.append(k)
    of_node = {n: k for k in out for n in k.nodes}
    for chain in chains:  # what the runtime still runs there (a view for a Gemm) is its consumer's
        users = sorted(g.consumers.get(g.nodes[chain[-1]].outputs[0], []))
        if users and users[0] in of_node:
            of_node[users[0]].absorbed += chain
            _skip_norm(g, of_node, chain, users, rules)
    return [k for k in out if k.nodes or k.tensor is not None]


def _skip_norm(g: OpGraph, of_node: dict[int, "Kernel"], chain: list[int], users: list[int],
               rules: "FusionRules") -> None:
    """A residual sum and a layer norm that the cancelled chain stood between fuse
    (SkipLayerNormalization) as they would side by side: the sum joins the norm's kernel."""
    src = g.nodes[chain[0]].inputs[0]
    prod = of_node.get(g.producer.get(src, -1))
    norm = of_node[users[0]]
    if prod is None or len(users) != 1 or prod.chain != ["add"] or norm.chain != ["layernorm"] \
            or g.consumers.get(src, []) != [chain[0]] or not rules.fuses("add", "layernorm"):
        return
    norm.nodes, norm.chain, norm.inputs = [*prod.nodes, *norm.nodes], ["add", "layernorm"], list(prod.inputs)
    prod.nodes = []
