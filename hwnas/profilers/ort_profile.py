"""Per-node times of a whole model from ONNX Runtime's profiler, under the timing protocol.

Why the runtime's profiler: a kernel's cost *inside* a model differs from its cost alone
(its weights come from a colder cache, its input from the previous kernel, layout
reorders sit only at layout boundaries; measured here: a depthwise convolution alone ran
35% faster than the same node inside MobileNetV2). The profiler times every node the
runtime executes, after its graph optimisations, in the context of the whole model, so
each run of one model yields one sample for every kernel in it.

The protocol is applied with ``number = 1`` (each repeat is one run: the profiler times
each node itself, so there is no timer resolution to amortise) and its warm-up, repeat
and stability rules. The graph the runtime really executes (fused and re-laid-out
nodes, with their input and output tensor names) is read back from its optimised-model
file, so that nodes can be traced to the ONNX nodes they came from.
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwnas.profilers.backends.base import OnnxTarget
from hwnas.profilers.timing import TimingProtocol, measure

log = logging.getLogger(__name__)

SUFFIX = "_kernel_time"
#: Attributes of executed nodes worth keeping (fused activation, layout details).
KEEP_ATTRS = ("activation", "group", "kernel_shape", "strides")


def node_protocol(protocol: TimingProtocol) -> TimingProtocol:
    """The protocol used for profiled runs: one run per repeat, the rest unchanged."""
    return replace(protocol, number=1, min_time_ms=0.0)


def read_executed_graph(path: str | Path) -> list[dict[str, Any]]:
    """Nodes of the optimised model the runtime wrote: name, op, domain, tensors, attrs."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    out = []
    for n in model.graph.node:
        attrs = {}
        for a in n.attribute:
            if a.name in KEEP_ATTRS:
                v = helper.get_attribute_value(a)
                attrs[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, (list, tuple)) else v)
        out.append({"name": n.name, "op_type": n.op_type, "domain": n.domain, "inputs": list(n.input),
                    "outputs": list(n.output), "attrs": attrs})
    return out


def _node_durations(profile_path: str) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Node name -> its kernel durations (µs) in run order, and node name -> op type."""
    with open(profile_path) as fh:
        events = json.load(fh)
    per: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith(SUFFIX):
            name = e["name"][: -len(SUFFIX)]
            per.setdefault(name, []).append(float(e["dur"]))
            ops.setdefault(name, str((e.get("args") or {}).get("op_name", "")))
    return per, ops


def _name_unnamed(graph: list[dict[str, Any]], ops: dict[str, str]) -> None:
    """Nodes the runtime created without a name are profiled as ``<OpType>_<index>``; pair
    them with the unnamed nodes of the executed graph by op type, in execution order."""
    named = {n["name"] for n in graph if n["name"]}
    spare: dict[str, list[str]] = {}
    for name, op in ops.items():  # dict order = first occurrence = execution order
        if name not in named:
            spare.setdefault(op, []).append(name)
    for n in graph:
        if not n["name"] and spare.get(n["op_type"]):
            n["name"] = spare[n["op_type"]].pop(0)


def profile_nodes(backend: Any, target: OnnxTarget, protocol: TimingProtocol) -> dict[str, Any]:
    """Per-node samples (ms) of ``target`` on an onnxruntime backend.

    Returns ``{"nodes": [{name, op_type, domain, inputs, outputs, attrs, samples_ms}],
    "runs": n}`` in execution order; samples of ``protocol.sessions`` sessions are pooled.
    """
    proto = node_protocol(protocol)
    feeds = target.feeds()
    graph: list[dict[str, Any]] = []
    pooled: dict[str, list[float]] = {}
    runs = 0
    with tempfile.TemporaryDirectory(prefix="hwnas-prof-") as tmp:
        for s in range(proto.sessions):
            opt = str(Path(tmp) / "executed.onnx") if s == 0 else None
            sess = backend.session(target.data, profile_prefix=str(Path(tmp) / f"s{s}"), optimized_path=opt)
            if opt is not None:
                graph = read_executed_graph(opt)
            res = measure(backend.prepared(sess, feeds, {}).run, proto)
            path = sess.end_profiling()
            k = len(res.samples_ms)
            runs += k
            durations, ops = _node_durations(path)
            if s == 0:
                _name_unnamed(graph, ops)
            for name, durs in durations.items():
                pooled.setdefault(name, []).extend(d / 1000.0 for d in durs[-k:])
            Path(path).unlink(missing_ok=True)
    nodes = []
    for n in graph:
        samples = pooled.get(n["name"])
        if samples is None:  # constant-folded away at session creation: never runs
            continue
        nodes.append({**n, "samples_ms": samples})
    missing = set(pooled) - {n["name"] for n in graph}
    if missing:
        log.debug("%s: profiled nodes not in the executed graph: %s", target.label, sorted(missing)[:5])
    return {"nodes": nodes, "runs": runs}
