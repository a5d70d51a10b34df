"""Probe which operators a runtime runs in its blocked channel layout (see hwnas/nn/kernels/rules.py).

Nothing is timed here: each probe is compiled once and the graph the runtime executes
is read back (its optimised-model file). Deterministic for a given runtime build and CPU,
and fast (a few seconds for every probe).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hwnas.nn.kernels.attribution import trace_nodes
from hwnas.nn.kernels.probes import ProbeGraph, apply
from hwnas.nn.onnx_graph import import_onnx
from hwnas.profilers.ort_profile import read_executed_graph

NCHWC_DOMAIN = "com.microsoft.nchwc"
BINARY = ("add", "mul", "concat")
UNARY = ("relu", "relu6", "clip", "sigmoid", "hsigmoid", "hswish", "tanh", "leakyrelu", "swish", "gelu", "scale")
POOLS = ("maxpool", "avgpool", "gap")


def _executed(backend: Any, data: bytes) -> tuple[Any, list[dict[str, Any]]]:
    model = import_onnx(data, name="probe")
    with tempfile.TemporaryDirectory(prefix="hwnas-layout-") as tmp:
        path = str(Path(tmp) / "executed.onnx")
        backend.session(data, optimized_path=path)
        return model, read_executed_graph(path)


def executed_for(backend: Any, data: bytes, probe: str = "B") -> tuple[list[dict[str, Any]], set[str]]:
    """The executed nodes traced to the node named ``probe``, and the original tensor names."""
    model, executed = _executed(backend, data)
    traced = trace_nodes(model.graph, executed)
    target = {n.name: i for i, n in enumerate(model.graph.nodes)}.get(probe)
    mine = [n for n, (kind, ref) in zip(executed, traced) if kind == "node" and ref == target]
    return mine, set(model.graph.shapes)


def _mode(nodes: list[dict[str, Any]], originals: set[str]) -> str | None:
    """transform / agnostic / nchw from the executed nodes of one probe (None: absorbed)."""
    if not nodes:
        return None
    if any(n["domain"] == NCHWC_DOMAIN for n in nodes):
        return "transform"
    first_inputs = [t for t in nodes[0]["inputs"] if t]
    return "nchw" if any(t in originals for t in first_inputs[:2]) else "agnostic"


def _reorders_input(backend: Any, c_in: int) -> tuple[bool, bool]:
    """(a convolution reading the graph input runs blocked, that input is reordered first)."""
    pg = ProbeGraph(32, 16, c_in=c_in)
    model, executed = _executed(backend, pg.to_bytes([pg.conv("x", 32, 1, name="B")], post=False))
    blocked = any(n["domain"] == NCHWC_DOMAIN and n["op_type"] == "Conv" for n in executed)
    return blocked, any(n["op_type"] == "ReorderInput" for n in executed)


def _conv_variant(backend: Any, c: int, c_out: int, k: int, groups: int) -> bool:
    pg = ProbeGraph(c, 16)
    _, t = pg.prefix(c)
    pg.conv(t, c_out, k, groups, name="B")
    data = pg.to_bytes(["B_out"])
    mine, _ = executed_for(backend, data)
    return any(n["domain"] == NCHWC_DOMAIN for n in mine)


def _from_plain(backend: Any, op: str, c: int) -> str:
    """Whether a blocked-capable op reorders a plain input in (``transform``) or runs plain."""
    pg = ProbeGraph(c, 16)
    pre, t = pg.prefix(c)
    t = pg.unary(t, "clip", "plain")  # Clip runs in the plain layout: its output is plain
    mine, _ = executed_for(backend, pg.to_bytes([apply(pg, op, t, pre, "B", c)]))
    return "transform" if any(n["domain"] == NCHWC_DOMAIN for n in mine) else "nchw"


def _probe_mode(backend: Any, op: str, c: int, aligned: bool) -> str | None:
    pg = ProbeGraph(c, 16)
    if aligned:
        pre, t = pg.prefix(c)
    else:  # unaligned widths: only convolutions produce a blocked tensor, so start from two
        t, pre = pg.conv("x", c, 3, name="pre"), pg.conv("x", c, 3, name="barrier")
    y = apply(pg, op, t, pre, "B", c)
    mine, originals = executed_for(backend, pg.to_bytes([y]))
    return _mode(mine, originals)


def measure_layout(backend: Any) -> dict[str, Any]:
    """``{"block", "conv": {variant: bool}, "modes": {category: [aligned, unaligned]}}``."""
    block, small_plain = 0, False
    for c_in in (4, 8, 16, 32, 64):
        blocked, reorder = _reorders_input(backend, c_in)
        if blocked and reorder:
            block = c_in
            break
        small_plain = small_plain or (blocked and not reorder)
    if block == 0:
        return {"block": 0, "conv": {}, "modes": {}}
    b = block
    # Input widths that are not whole blocks are padded by the reorder when they are a
    # multiple of some quantum (4 for ONNX Runtime 1.2x on AVX-512); find it.
    quantum = next((q for q in (1, 2, 4, 8) if q < b and _conv_variant(backend, b + q, 2 * b, 1, 1)), b)
    conv = {
        "quantum": quantum,
        "dense": _conv_variant(backend, 2 * b, 2 * b, 3, 1),
        "dw": _conv_variant(backend, 2 * b, 2 * b, 3, 2 * b),
        "dw_padded": _conv_variant(backend, b + quantum, b + quantum, 3, b + quantum),
        "grouped_aligned": _conv_variant(backend, 4 * b, 4 * b, 3, 2),
        "grouped_unaligned": _conv_variant(backend, b, b, 3, 2),
        "dw_multiplier": _conv_variant(backend, 2 * b, 4 * b, 3, 2 * b),
        "small_input_plain": small_plain,
    }
    modes: dict[str, list[str]] = {}
    for op in (*UNARY, *BINARY, *POOLS, "bn"):
        aligned = _probe_mode(backend, op, 2 * b, True) or "nchw"
        modes[op] = [aligned, "" if op in UNARY else (_probe_mode(backend, op, b + b // 2, False) or "nchw")]
    for op in UNARY:  # right after a convolution they would merge into it: assume what a sum does
        modes[op][1] = modes["add"][1]
    for op, m in modes.items():  # third entry: what a blocked-capable op does with a plain input
        m.append(_from_plain(backend, op, 2 * b) if m[0] == "transform" else "nchw")
    return {"block": block, "conv": conv, "modes": modes}
