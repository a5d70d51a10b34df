"""Trace the nodes a runtime executed back to our kernels, so profiled times become
per-kernel samples.

ONNX Runtime renames what it rewrites: a blocked convolution that absorbed a ReLU is
called ``<relu output>_nchwc``, a fused split ``/Slice_1/GatherSliceToSplitFusion``,
layout changes ``ReorderInput_token_4``; nodes it creates while decomposing an op can be
unnamed. A node is traced by, in order: an output tensor of the original graph; its
name minus ``_nchwc`` as a tensor; its name, or a leading part of it, as an original
node name. Reorders are traced
to the tensor they convert.

What cannot be traced, and reorders our layout rules did not predict, is reported, not
dropped: the kernel job stores both with each network so the rules can be checked.
"""
from __future__ import annotations

from typing import Any

from hwnas.nn.kernels.detect import KernelGraph
from hwnas.nn.onnx_graph import OpGraph

REORDERS = {"ReorderInput": "in", "ReorderOutput": "out"}
#: Nodes the runtime makes from a whole exporter pattern (x feeds several of its nodes).
PATTERN_OPS = ("Gelu", "BiasGelu", "FastGelu", "QuickGelu", "LayerNormalization", "SkipLayerNormalization",
               "SimplifiedLayerNormalization")


def _trace_one(g: OpGraph, by_name: dict[str, int], n: dict[str, Any]) -> tuple[str, Any]:
    if n["op_type"] in REORDERS:
        direction = REORDERS[n["op_type"]]
        return "reorder", (g.resolve(n["inputs"][0] if direction == "in" else n["outputs"][0]), direction)
    for t in n["outputs"]:
        if g.resolve(t) in g.producer:
            return "node", g.producer[g.resolve(t)]
    name = n["name"]
    for suffix in ("_nchwc", "_bn_nchwc"):
        if name.endswith(suffix) and g.resolve(name[: -len(suffix)]) in g.producer:
            return "node", g.producer[g.resolve(name[: -len(suffix)])]
    while name:
        name = g.merged.get(name, name)
        if name in by_name:
            return "node", by_name[name]
        name = name.rstrip("/").rpartition("/")[0]
    return "unknown", None


def _by_input(g: OpGraph, executed: list[dict[str, Any]], traced: list[tuple[str, Any]], i: int,
              producer: dict[str, int], claimed: set[int]) -> tuple[str, Any] | None:
    """An unnamed node made while decomposing an op X reads X's input: follow its input to
    the executed producer, and take the one original consumer of that producer's output
    that no named executed node stands for."""
    for t in executed[i]["inputs"]:
        p = producer.get(t)
        if p is None or p == i:
            continue
        kind, ref = traced[p]
        if kind != "node":
            continue
        users = {c for o in g.nodes[ref].outputs for c in g.consumers.get(o, [])} - claimed
        if len(users) == 1:
            return "node", users.pop()
        if users and executed[i]["op_type"] in PATTERN_OPS:  # a fused pattern starts at its first node
            return "node", min(users)
    return None


def trace_nodes(g: OpGraph, executed: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """One ``("node", op index) | ("reorder", (tensor, dir)) | ("unknown", None)`` per executed node."""
    by_name = {n.name: i for i, n in enumerate(g.nodes)}
    traced = [_trace_one(g, by_name, n) for n in executed]
    producer: dict[str, int] = {}
    consumer: dict[str, int] = {}
    for i, n in enumerate(executed):
        for t in n["outputs"]:
            producer.setdefault(t, i)
        for t in n["inputs"]:
            consumer.setdefault(t, i)
    for i, (kind, ref) in enumerate(traced):  # a reorder reading a tensor the runtime renamed (a moved
        if kind == "reorder" and ref[1] == "in" and ref[0] not in g.shapes:  # transpose): its producer's
            p = producer.get(executed[i]["inputs"][0])                        # traced node's output
            if p is not None and traced[p][0] == "node":
                traced[i] = ("reorder", (g.nodes[traced[p][1]].outputs[0], "in"))
    claimed = {ref for kind, ref in traced if kind == "node"}
    for _ in range(4):  # unnamed helper nodes: by their input, else by the node using their output
        changed = False
        for i, (kind, _) in enumerate(traced):
            if kind != "unknown":
                continue
            found = _by_input(g, executed, traced, i, producer, claimed)
            if found is None:
                nxt = [consumer[t] for t in executed[i]["outputs"] if t in consumer]
                if nxt:
                    k2, ref = traced[nxt[0]]
                    if k2 == "reorder" and ref[1] == "out" and ref[0] in g.producer:
                        k2, ref = "node", g.producer[ref[0]]  # a decomposed op whose result is reordered back
                    found = (k2, ref) if k2 == "node" else None
            if found is not None:
                traced[i] = found
                changed = True
        if not changed:
            break
    return traced


def _add(acc: list[float] | None, samples: list[float]) -> list[float]:
    if acc is None:
        return list(samples)
    n = min(len(acc), len(samples))
    return [acc[i] + samples[i] for i in range(n)]


def kernel_samples(kg: KernelGraph, profile: dict[str, Any]) -> tuple[dict[int, list[float]], dict[str, Any]]:
    """Per-kernel samples (ms, one per run, summed over the executed nodes of each kernel)
    and a report of what did not match: untraced nodes, unpredicted reorders and
    predicted reorders that did not happen, with their time."""
    executed = profile["nodes"]
    traced = trace_nodes(kg.graph, executed)
    of_node = kg.node_kernel()
    of_reorder = kg.reorder_index()
    per: dict[int, list[float]] = {}
    unknown: list[dict[str, Any]] = []
    extra_reorders: list[dict[str, Any]] = []
    for n, (kind, ref) in zip(executed, traced):
        k = of_node.get(ref) if kind == "node" else of_reorder.get(tuple(ref)) if kind == "reorder" else None
        if k is None and kind == "reorder":
            k = _inside(kg, of_node, ref[0])
        if k is None:
            rec = {"name": n["name"], "op": n["op_type"], "ms": _median(n["samples_ms"])}
            (extra_reorders if kind == "reorder" else unknown).append(rec)
            continue
        per[k] = _add(per.get(k), n["samples_ms"])
    missing = [i for i, k in enumerate(kg.kernels) if k.tensor is not None and i not in per]
    report = {"untraced": unknown, "unpredicted_reorders": extra_reorders,
              "missing_reorders": [kg.kernels[i].prim.key for i in missing if kg.kernels[i].prim],
              "kernels_without_time": [i for i, k in enumerate(kg.kernels) if k.tensor is None and i not in per]}
    return per, report


def _inside(kg: KernelGraph, of_node: dict[int, int], tensor: str) -> int | None:
    """The kernel a reordered tensor lives in, when its producer and consumers all belong
    to that one kernel (e.g. the gate of an SE block)."""
    g = kg.graph
    k = of_node.get(g.producer.get(tensor, -1))
    users = {of_node.get(c) for c in g.consumers.get(tensor, [])}
    return k if k is not None and users == {k} else None


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if s else 0.0
