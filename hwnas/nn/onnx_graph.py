"""Import any ONNX model: static input shapes, shape inference, constant folding, and a
plain graph of compute nodes with a shape for every tensor.

Why our own pass instead of handing the file to the runtime: a latency predictor must
know each node's configuration (channels, spatial size, kernel, stride, groups) without
running the model on the target device, and the cost store needs an identity for the
model that does not change with its weights. Shape-only subgraphs (``Shape -> Gather ->
Div`` chains that exporters emit for ``chunk`` or ``view``) are folded to constants, the
way every runtime folds them, because they cost nothing at run time and would otherwise
hide the shapes of the nodes that do.

Every problem with a user's file is one :class:`~hwnas.errors.ModelImportError` line that
names the file and, where it applies, the input or node.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import ConfigError, ModelImportError
from hwnas.nn.onnx_fold import NO_FOLD, dims_of, fold, infer, skeleton, static_shapes
from hwnas.primitives import NetworkSpec, Primitive

log = logging.getLogger(__name__)

#: Ops that never run: removed, their output aliased to their input.
ALIAS_OPS = ("Identity", "Dropout")


@dataclass(frozen=True)
class OpNode:
    """One compute node: ONNX op, its tensors and attributes (plain Python values)."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass
class OpGraph:
    """Compute nodes in topological order plus what is known about every tensor."""

    source: str
    nodes: list[OpNode]
    shapes: dict[str, tuple[int, ...]]
    constants: dict[str, Any]            # name -> ndarray for small constants, None for large weights
    inputs: list[str]
    outputs: list[str]
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)
    #: Tensors and node names removed on import (identities, duplicates) -> what replaced them.
    alias: dict[str, str] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)

    def resolve(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def __post_init__(self) -> None:
        for i, n in enumerate(self.nodes):
            for t in n.outputs:
                if t:
                    self.producer[t] = i
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(i)

    def is_const(self, tensor: str) -> bool:
        return tensor in self.constants

    def value(self, tensor: str) -> np.ndarray | None:
        v = self.constants.get(tensor)
        return None if v is None else np.asarray(v)

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    def data_inputs(self, node: OpNode) -> list[str]:
        """Non-constant inputs (activations), in order."""
        return [t for t in node.inputs if t and not self.is_const(t)]


@dataclass
class OnnxModel:
    """An imported model: the bytes to run (inputs made static) and the graph to predict."""

    source: str
    data: bytes
    graph: OpGraph
    input_shapes: dict[str, tuple[int, ...]]
    input_types: dict[str, int]

    @property
    def hash(self) -> str:
        return to_network(self.graph).hash


# -- reading ------------------------------------------------------------------------------
def parse_input_shapes(items: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    """``NAME=1x3x224x224`` options (``1x3x224x224`` alone for a single-input model)."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items or ():
        name, _, dims = item.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not shape or any(d < 1 for d in shape):
            raise ConfigError(f"--input-shape: expected NAME=1x3x224x224 (positive integers), got {item!r}")
        out[name.strip()] = shape
    return out


def _load_proto(data: bytes, source: str) -> Any:
    import onnx

    if not data:
        raise ModelImportError(f"{source}: empty file, not an ONNX model")
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelImportError(f"{source}: not a readable ONNX model (truncated or not ONNX: {first})") from None
    if not model.graph.node:
        raise ModelImportError(f"{source}: the ONNX graph has no nodes (truncated or not ONNX)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelImportError(f"{source}: invalid ONNX model ({first})") from None
    return model


def _fmt_dims(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _fix_inputs(model: Any, shapes: Mapping[str, tuple[int, ...]], source: str) -> dict[str, tuple[int, ...]]:
    """Make every graph input static, from the model or from ``shapes``; returns them."""
    inits = {t.name for t in model.graph.initializer}
    real = [vi for vi in model.graph.input if vi.name not in inits]
    names = [vi.name for vi in real]
    given = dict(shapes)
    if "" in given:
        if len(real) != 1:
            raise ConfigError(f"--input-shape: {source} has {len(real)} inputs ({', '.join(names)}); use NAME=DIMS")
        given[names[0]] = given.pop("")
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"--input-shape: {source} has no input {unknown[0]!r}; inputs: {', '.join(names)}")
    fixed: dict[str, tuple[int, ...]] = {}
    for vi in real:
        dims = dims_of(vi)
        if vi.name in given:
            shape = given[vi.name]
            if len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
                raise ConfigError(f"--input-shape: {vi.name}={'x'.join(map(str, shape))} does not fit the "
                                  f"model's input {_fmt_dims(dims)} in {source}")
        elif any(d is None for d in dims):
            example = "x".join(str(d or 1) for d in dims)
            raise ModelImportError(f"{source}: input {vi.name!r} has a dynamic shape {_fmt_dims(dims)}; give "
                                   f"--input-shape {vi.name}={example} (with the sizes you deploy)")
        else:
            shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        tshape = vi.type.tensor_type.shape
        for d, s in zip(tshape.dim, shape):
            d.Clear()
            d.dim_value = int(s)
        fixed[vi.name] = tuple(shape)
    return fixed


# -- the graph ---------------------------------------------------------------------------------
def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, (list, tuple)):
            v = tuple(x.decode(errors="replace") if isinstance(x, bytes) else x for x in v)
        elif not isinstance(v, (int, float, str)):
            v = type(v).__name__  # tensors and graphs: only their presence matters here
        out[a.name] = v
    return out


def _build_graph(model: Any, small: dict[str, Any], source: str, weights: set[str] = frozenset()) -> OpGraph:  # type: ignore[assignment]
    inferred = infer(model, source, strict=True)
    shapes = static_shapes(inferred)
    alias: dict[str, str] = {}
    merged: dict[str, str] = {}

    def res(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    nodes: list[OpNode] = []
    seen: dict[tuple[Any, ...], OpNode] = {}
    for i, node in enumerate(inferred.graph.node):
        ins = tuple(res(t) if t else "" for t in node.input)
        if node.op_type in ALIAS_OPS and ins and ins[0]:
            alias[node.output[0]] = ins[0]
            continue
        attrs = _attrs(node)
        # Identical nodes on identical inputs run once (runtimes eliminate common
        # subexpressions: the per-edge ReLUs of a NAS-Bench-201 cell are one ReLU).
        key = (node.op_type, node.domain, ins, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if node.op_type not in NO_FOLD and key in seen and len(node.output) == len(seen[key].outputs):
            alias.update({o: p for o, p in zip(node.output, seen[key].outputs) if o})
            merged[node.name] = seen[key].name
            continue
        name = node.name or f"{node.op_type}_{i}"
        for t in [*ins, *node.output]:
            if t and t not in shapes:
                raise ModelImportError(f"{source}: node {name!r} ({node.op_type}): the shape of tensor {t!r} "
                                       "is unknown after shape inference (a dynamic shape inside the model?)")
        nodes.append(OpNode(name, node.op_type, node.domain or "", ins, tuple(node.output), attrs))
        seen[key] = nodes[-1]
    inits = {t.name for t in inferred.graph.initializer} | set(weights)
    inputs = [vi.name for vi in inferred.graph.input if vi.name not in inits]
    outputs = [res(vi.name) for vi in inferred.graph.output]
    consts = {k: v for k, v in small.items() if k in inits}
    return OpGraph(source, nodes, shapes, consts, inputs, outputs, alias=alias, merged=merged)


def import_onnx(source: str | Path | bytes, *, input_shapes: Mapping[str, tuple[int, ...]] | None = None,
                name: str | None = None) -> OnnxModel:
    """Read an ONNX file (or bytes) into an :class:`OnnxModel` with static shapes."""
    import onnx

    label = name or (str(source) if not isinstance(source, bytes) else "<onnx bytes>")
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ModelImportError(f"{source}: cannot read ({exc.strerror})") from None
    model = _load_proto(data, label)
    fixed = _fix_inputs(model, input_shapes or {}, label)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.input if vi.name in fixed}
    static_bytes = model.SerializeToString()
    stripped, weights = skeleton(onnx.load_from_string(static_bytes))
    folded, small = fold(stripped, label)
    small.update({w: None for w in weights})
    graph = _build_graph(folded, small, label, set(weights))
    if not graph.nodes:
        raise ModelImportError(f"{label}: no compute nodes left after folding constants")
    return OnnxModel(label, static_bytes, graph, fixed, types)


# -- identity: the op-level NetworkSpec ---------------------------------------------------------
def _dims_str(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _chw(shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) of a tensor: batch dropped, missing dims 1, extra trailing dims folded into W."""
    dims = [max(int(d), 1) for d in shape[1:]] if len(shape) > 1 else [max(int(d), 1) for d in shape]
    dims = (dims + [1, 1, 1])[:3] if len(dims) <= 3 else dims[:2] + [math.prod(dims[2:])]
    return dims[0], dims[1], dims[2]


def node_primitive(g: OpGraph, node: OpNode) -> Primitive:
    """A device-independent record of one ONNX node (its op, shapes and attributes)."""
    data = g.data_inputs(node) or [t for t in node.inputs if t]
    c_in, h, w = _chw(g.shape(data[0])) if data else (1, 1, 1)
    c_out = _chw(g.shape(node.outputs[0]))[0]
    extras: dict[str, Any] = {"in": ";".join(_dims_str(g.shape(t)) for t in data),
                              "out": ";".join(_dims_str(g.shape(t)) for t in node.outputs if t)}
    consts = [t for t in node.inputs if t and g.is_const(t)]
    if consts:
        extras["w"] = ";".join(_dims_str(g.shape(t)) for t in consts)
    for k, v in sorted(node.attrs.items()):
        extras[f"a_{k}"] = ",".join(map(str, v)) if isinstance(v, tuple) else v
    ks, st = node.attr("kernel_shape"), node.attr("strides")
    groups = int(node.attr("group", 1)) if node.op_type == "Conv" else 1
    dom = f"{node.domain.replace('.', '_')}-" if node.domain not in ("", "ai.onnx") else ""
    return Primitive(f"onnx-{dom}{node.op_type.lower()}", c_in, c_out, h, w,
                     kernel=int(ks[0]) if ks else 1, stride=int(st[0]) if st else 1,
                     groups=groups if c_in % groups == 0 and c_out % groups == 0 else 1,
                     extras={k: str(v) for k, v in extras.items()})


def to_network(g: OpGraph) -> NetworkSpec:
    """Node 0 stands for the graph inputs, then one node per compute node; its hash is
    the content hash of the graph (ops, attributes, shapes, topology; not the weights)."""
    first = g.shape(g.inputs[0]) if g.inputs else (1, 1, 1, 1)
    c, h, w = _chw(first)
    extras = {"in": ";".join(f"{n}={_dims_str(g.shape(n))}" for n in g.inputs)}
    nodes = [Primitive("input", c, c, h, w, extras=extras)]
    edges: set[tuple[int, int]] = set()
    for j, node in enumerate(g.nodes, start=1):
        nodes.append(node_primitive(g, node))
        srcs = {g.producer[t] + 1 for t in g.data_inputs(node) if t in g.producer}
        if any(t in g.inputs for t in node.inputs) or not srcs:
            srcs.add(0)
        edges |= {(s, j) for s in srcs}
    return NetworkSpec((c, h, w), tuple(nodes), tuple(sorted(edges)), (("source", g.source),))
