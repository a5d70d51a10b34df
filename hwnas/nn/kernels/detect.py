"""Kernel detection: an imported ONNX graph becomes the kernels a runtime executes.

One pass in topological order, as the runtimes' own graph transformers do:

1. composites (SE, swish, channel shuffle) are found by structure (patterns.py);
2. every other node either joins the kernel of its producer, when the measured rules
   say that pair fuses (``conv>relu6``; a sum joins a blocked convolution only when its
   other operand is already in the blocked layout, which is what makes a runtime's
   fused residual add possible), or starts a kernel of its own;
3. each kernel gets the layout it runs in (rules.py: transform / agnostic / plain), and
   wherever a tensor is needed in a layout it does not have, a ``reorder`` kernel is
   inserted once per tensor and layout, because that copy is real work the runtime does.

The result is a :class:`KernelGraph`; ``to_network()`` gives the NetworkSpec whose nodes
are the kernels (``conv-relu6 c32>32 112x112 k3 s1 g32 relu6``), node 0 standing for the
model inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwnas.nn.kernels.catalog import CONVS, category, chw, kernel_primitive, reorder_primitive
from hwnas.nn.kernels.patterns import find_composites
from hwnas.nn.kernels.rules import FusionRules
from hwnas.nn.kernels.views import VIEW_CATS, absorb_transposes, cancel_transposes
from hwnas.nn.onnx_graph import OpGraph
from hwnas.primitives import NetworkSpec, Primitive

BLOCKED, PLAIN = "nchwc", "nchw"


@dataclass
class Kernel:
    """One executed unit: ONNX nodes (indices into the OpGraph) or a reorder of a tensor."""

    op: str
    nodes: list[int]
    inputs: list[str]
    outputs: list[str]
    layout: str = PLAIN
    chain: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    tensor: str | None = None           # reorders: the tensor whose layout changes
    prim: Primitive | None = None
    #: Nodes the runtime folded into this kernel without a kernel of their own (a cancelled
    #: transpose pair before it): whatever the runtime still runs for them is timed here.
    absorbed: list[int] = field(default_factory=list)

    @property
    def sig(self) -> str:
        """The fusion signature: the chain without batch norms (folded into the weights)."""
        return "-".join(c for c in self.chain if c != "bn") or "bn"


@dataclass
class KernelGraph:
    source: str
    graph: OpGraph
    kernels: list[Kernel]
    rules: FusionRules

    def node_kernel(self) -> dict[int, int]:
        """ONNX node index -> kernel index."""
        return {n: k for k, kern in enumerate(self.kernels) for n in [*kern.nodes, *kern.absorbed]}

    def reorder_index(self) -> dict[tuple[str, str], int]:
        """(tensor, direction) -> kernel index of the predicted reorder."""
        return {(k.tensor, k.extras["dir"]): i for i, k in enumerate(self.kernels) if k.tensor is not None}

    def to_network(self) -> NetworkSpec:
        g = self.graph
        c, h, w = chw(g.shape(g.inputs[0])) if g.inputs else (1, 1, 1)
        nodes = [Primitive("input", c, c, h, w)]
        producer: dict[str, int] = {}
        edges: set[tuple[int, int]] = set()
        for j, k in enumerate(self.kernels, start=1):
            assert k.prim is not None
            nodes.append(k.prim)
            srcs = {producer[t] for t in k.inputs if t in producer}
            edges |= {(s, j) for s in (srcs or {0})}
            for t in k.outputs:
                producer[t] = j
        return NetworkSpec((c, h, w), tuple(nodes), tuple(sorted(edges)), (("source", self.source),))

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.kernels:
            out[k.op] = out.get(k.op, 0) + 1
        return out


class _Detector:
    """The state of one detection pass (see module docstring)."""

    def __init__(self, g: OpGraph, rules: FusionRules, composites: bool) -> None:
        self.g, self.rules = g, rules
        self.kernels: list[Kernel] = []
        self.of_tensor: dict[str, int] = {}           # tensor -> producing kernel
        self.avail: dict[str, set[str]] = {t: {PLAIN} for t in g.inputs}
        # Tensors a blocked kernel produced: elementwise ops and fused sums follow these
        # only, not blocked copies a reorder made for some convolution's own use.
        self.native: set[str] = set()
        self.comp_of: dict[int, Any] = {}
        if composites:
            for c in find_composites(g, rules.merges):
                for n in c.nodes:
                    self.comp_of[n] = c

    def run(self) -> list[Kernel]:
        for j in range(len(self.g.nodes)):
            comp = self.comp_of.get(j)
            if comp is not None:
                if j == max(comp.nodes):
                    self._composite(comp)
            elif not self._attach(j):
                self._new(j)
        for t in self.g.outputs:
            if t in self.avail and PLAIN not in self.avail[t]:
                self._reorder(t, PLAIN)
        return self.kernels

    # -- layouts ---------------------------------------------------------------------------
    def _reorder(self, t: str, layout: str) -> None:
        k = Kernel("reorder", [], [t], [t], layout, ["reorder"], {"dir": "in" if layout == BLOCKED else "out"},
                   tensor=t)
        k.prim = reorder_primitive(self.g.shape(t), k.extras["dir"])
        self.kernels.append(k)
        self.avail.setdefault(t, set()).add(layout)

    def _need(self, tensors: list[str], layout: str) -> None:
        for t in tensors:
            if layout not in self.avail.get(t, {PLAIN}):
                self._reorder(t, layout)

    def _layout(self, cat: str, j: int, data: list[str]) -> tuple[str, str]:
        """(input layout needed, output layout) of a new kernel anchored at node ``j``."""
        g, r = self.g, self.rules
        if r.block <= 0 or not data:
            return PLAIN, PLAIN
        c = chw(g.shape(data[0]))[0]
        if cat in CONVS:
            c_out = chw(g.shape(g.nodes[j].outputs[0]))[0]
            if not r.conv_blocked(cat, c, c_out, int(g.nodes[j].attr("group", 1))):
                return PLAIN, PLAIN
            return (PLAIN if cat == "conv" and r.conv_plain_input(c) else BLOCKED), BLOCKED
        mode = r.mode(cat, c, plain_input=not any(t in self.native for t in data))
        if mode == "transform":
            return BLOCKED, BLOCKED
        if cat == "concat":  # joins blocked inputs only when every width is a whole number of blocks
            same = all(r.aligned(chw(g.shape(t))[0]) for t in data)
        else:
            same = len({g.shape(t) for t in data}) == 1
        if mode == "agnostic" and same and all(t in self.native for t in data):
            return BLOCKED, BLOCKED
        return PLAIN, PLAIN

    # -- grouping --------------------------------------------------------------------------
    def _producer_kernel(self, t: str, j: int, within: set[int] | None = None) -> Kernel | None:
        """The fused-group kernel whose current output ``t`` is used by node ``j`` alone (or
        only by nodes ``within`` one composite)."""
        k = self.of_tensor.get(t)
        if k is None:
            return None
        kern = self.kernels[k]
        if kern.tensor is not None or kern.op in ("se", "swish", "hswish", "channel_shuffle") or kern.outputs != [t]:
            return None
        users = self.g.consumers.get(t, [])
        ok = (set(users) <= within if within is not None else users == [j]) and t not in self.g.outputs
        return kern if ok else None

    def _attach(self, j: int) -> bool:
        g, node = self.g, self.g.nodes[j]
        cat = category(g, node)
        data = g.data_inputs(node)
        if len(data) == 1:  # activations, norms, a bias or scale (constant operand): as measured
            kern = self._producer_kernel(data[0], j)
            if kern is None:
                return False
            # Chains of views and transposes are one data movement: the runtime's transpose
            # optimiser reorders, merges and moves them, so their parts cannot be timed apart.
            views = cat in VIEW_CATS and all(c in VIEW_CATS for c in kern.chain) and kern.tensor is None
            if not views and not self.rules.fuses(kern.sig, cat):
                return False
            return self._join(kern, j, cat, [])
        if cat == "add" and len(data) == 2 and g.shape(data[0]) == g.shape(data[1]):
            best: tuple[int, Kernel, str] | None = None
            for t, other in ((data[0], data[1]), (data[1], data[0])):
                kern = self._producer_kernel(t, j)
                if kern is None:
                    continue
                blocked = kern.layout == BLOCKED
                # a blocked kernel sums a tensor another blocked kernel produced; a plain one
                # (unaligned channels: ONNX Runtime's FusedConv) any tensor, reordered to plain
                if not self.rules.fuses(kern.sig, "add", plain=not blocked):
                    continue
                if blocked and other not in self.native:
                    continue
                # blocked: the later-produced operand's kernel takes the sum; plain: the first
                # operand's (ONNX Runtime's Conv+Add fusion looks at the Add's inputs in order).
                # Never both kinds at once: a blocked one needs the other operand blocked-made.
                idx = self.of_tensor[t] if blocked else int(t == data[0])
                if best is None or idx > best[0]:
                    best = (idx, kern, other)
            if best is not None:
                if best[1].layout != BLOCKED:
                    self._need([best[2]], PLAIN)
                return self._join(best[1], j, cat, [best[2]])
        return False

    def _join(self, kern: Kernel, j: int, cat: str, extra_inputs: list[str]) -> bool:
        node = self.g.nodes[j]
        old = kern.outputs[0]
        kern.nodes.append(j)
        kern.chain.append(cat)
        kern.inputs += extra_inputs
        kern.outputs = [t for t in node.outputs if t]
        self.avail.pop(old, None)
        for t in kern.outputs:
            self.of_tensor[t] = self.of_tensor[old]
            self._produced(t, kern.layout)
        return True

    def _produced(self, t: str, layout: str) -> None:
        self.avail[t] = {layout}
        if layout == BLOCKED:
            self.native.add(t)

    def _add(self, kern: Kernel) -> None:
        idx = len(self.kernels)
        self.kernels.append(kern)
        for t in kern.outputs:
            self.of_tensor[t] = idx
            self._produced(t, kern.layout)

    def _new(self, j: int) -> None:
        node = self.g.nodes[j]
        cat = category(self.g, node)
        data = self.g.data_inputs(node)
        need, out = self._layout(cat, j, data)
        self._need(data, need)
        self._add(Kernel(cat, [j], list(data), [t for t in node.outputs if t], out, [cat]))

    def _composite(self, comp: Any) -> None:
        inside = {t for n in comp.nodes for t in self.g.nodes[n].outputs if t}
        ins = list(dict.fromkeys(t for n in comp.nodes for t in self.g.data_inputs(self.g.nodes[n]) if t not in inside))
        members = set(comp.nodes)
        outs = [t for t in inside if t in self.g.outputs or any(c not in members for c in self.g.consumers.get(t, []))]
        # A composite with a measured layout mode (swish) follows it like an elementwise op;
        # the others (SE's broadcast multiply, shuffle's transpose, split) need plain data.
        layout = PLAIN
        if len(ins) == 1 and self.rules.mode(comp.op, chw(self.g.shape(ins[0]))[0]) == "agnostic" \
                and ins[0] in self.native:
            layout = BLOCKED
        kern = self._producer_kernel(ins[0], -1, members) if len(ins) == 1 and comp.op == "layernorm" else None
        if kern is not None and kern.chain == ["add"] and self.rules.fuses("add", "layernorm"):
            kern.nodes += list(comp.nodes)  # a residual sum and the norm after it: SkipLayerNormalization
            kern.chain.append("layernorm")
            self.of_tensor.update({t: self.of_tensor[ins[0]] for t in outs})
            kern.outputs = outs
            for t in outs:
                self._produced(t, kern.layout)
            return
        self._need(ins, layout)
        self._add(Kernel(comp.op, list(comp.nodes), ins, outs, layout, [comp.op], dict(comp.extras)))


def detect(g: OpGraph, rules: FusionRules, *, composites: bool = True) -> KernelGraph:
    """The kernels of an imported graph under a device's measured rules.

    ``FusionRules.none()`` with ``composites=False`` gives the naive view: every ONNX
    compute node is its own kernel, no layout changes.
    """
    kernels = _Detector(g, rules, composites).run()
    if composites:
        kernels = absorb_transposes(g, cancel_transposes(g, kernels, rules), rules)
    for k in kernels:
        if k.prim is None:
            op = "-".join(k.chain)
            k.op = op
            k.prim = kernel_primitive(g, [g.nodes[n] for n in k.nodes], op, extras=k.extras)
    return KernelGraph(g.source, g, kernels, rules)
