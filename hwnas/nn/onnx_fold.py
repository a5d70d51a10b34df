"""Constant folding, shape inference and weight stripping for the ONNX importer.

Why separate: folding is the only part of the import that evaluates anything (with the
ONNX reference implementation, on constants only), and keeping it apart keeps the
importer's reading and checking logic short.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np

from hwnas.errors import ModelImportError

log = logging.getLogger(__name__)

#: Ops whose value depends on more than their inputs: never folded.
NO_FOLD = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")
MAX_FOLD_PASSES = 8


def dims_of(value_info: Any) -> list[int | None]:
    out: list[int | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None)
    return out


def infer(model: Any, source: str, strict: bool) -> Any:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=strict, data_prop=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelImportError(f"{source}: shape inference failed ({first})") from None


def static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = dims_of(vi)
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape") and None not in dims:
            out[vi.name] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    for t in g.initializer:
        out[t.name] = tuple(int(d) for d in t.dims)
    return out


def _eval_node(node: Any, values: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]) -> list[np.ndarray]:
    """Value(s) of a foldable node: Shape from static shapes, anything else by the ONNX
    reference implementation on its constant inputs."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    if node.op_type == "Shape":
        shape = np.asarray(shapes[node.input[0]], dtype=np.int64)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return [shape[attrs.get("start", 0):attrs.get("end", len(shape))]]
    if node.op_type == "Constant":
        return [numpy_helper.to_array(node.attribute[0].t)] if node.attribute[0].type == 4 else \
            [np.asarray(helper.get_attribute_value(node.attribute[0]))]
    ev = ReferenceEvaluator(node)
    feeds = {t: values[t] for t in node.input if t}
    return [np.asarray(v) for v in ev.run(None, feeds)]


def fold(model: Any, source: str) -> tuple[Any, dict[str, Any]]:
    """Fold shape-only and constant subgraphs into initializers until nothing changes.

    Returns the folded model and the values of small constants (large weights stay
    ``None`` in the map: their shapes are known, their values never needed).
    """
    from onnx import numpy_helper

    small: dict[str, Any] = {}
    for t in model.graph.initializer:
        n = math.prod(t.dims) if t.dims else 1
        small[t.name] = numpy_helper.to_array(t) if n <= 4096 else None
    for _ in range(MAX_FOLD_PASSES):
        shapes = static_shapes(infer(model, source, strict=False))
        keep, folded = [], []
        for node in model.graph.node:
            ins = [t for t in node.input if t]
            foldable = node.op_type not in NO_FOLD and (
                node.op_type == "Constant"
                or (node.op_type == "Shape" and node.input[0] in shapes)
                or (ins and all(t in small and small[t] is not None for t in ins)))
            if not foldable:
                keep.append(node)
                continue
            try:
                outs = _eval_node(node, small, shapes)
            except Exception as exc:  # leave it to the runtime; report why at debug level
                log.debug("%s: cannot fold %s (%s)", source, node.name, exc)
                keep.append(node)
                continue
            for name, val in zip(node.output, outs):
                small[name] = val
                folded.append(numpy_helper.from_array(np.asarray(val), name))
        if not folded:
            break
        del model.graph.node[:]
        model.graph.node.extend(keep)
        model.graph.initializer.extend(folded)
    return model, small


def skeleton(model: Any) -> tuple[Any, list[str]]:
    """The model without its large weights: they become typed graph inputs, so shape
    inference and folding never copy hundreds of megabytes (only their shapes matter)."""
    from onnx import helper

    keep, moved = [], []
    for t in model.graph.initializer:
        if math.prod(t.dims) > 4096 if t.dims else False:
            moved.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            keep.append(t)
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    model.graph.input.extend(moved)
    return model, [vi.name for vi in moved]
