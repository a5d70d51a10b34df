"""Measure a device's rules: which operator pairs fuse, and which operators run in the
runtime's blocked channel layout.

Fusion (timed): for a pair A>B, time A alone, B alone and A followed by B, each after the
same prefix, with the runtime's per-node profiler (only nodes traced to A or B count, no
prefix, no layout reorders). The pair is *fused* when ``T_A + T_B - T_AB`` exceeds
``share * min(T_A, T_B)``: running B after A then costs (almost) nothing more than A.
The same run also shows whether the runtime *merged* A and B into one executed node
(ONNX Runtime merges a convolution and a hard-sigmoid, yet the merged activation still
costs a full pass: merged, not fused). Detection groups a pair that is either, because
a merged node's time cannot be split between two kernels. Left sides may be groups
already found fused (``conv-add>relu``).

Layout (structural): for each operator category, build a probe and read back the graph
the runtime executes: a node in the blocked-layout domain is ``transform``; a plain node
that reads the blocked tensor directly is ``agnostic``; one fed through a reorder is
``nchw``. The block size is the smallest input width for which a convolution's input
gets reordered.
"""
from __future__ import annotations

import logging
import statistics
from typing import Any, Callable

from hwnas.nn.kernels.attribution import trace_nodes
from hwnas.nn.kernels.probes import PREFIX_NODES, ProbeGraph, apply
from hwnas.nn.kernels.rules import FusionRules
from hwnas.nn.onnx_graph import import_onnx
from hwnas.profilers.backends.base import OnnxTarget
from hwnas.profilers.ort_profile import profile_nodes
from hwnas.profilers.timing import TimingProtocol

log = logging.getLogger(__name__)

ACT_FOLLOWERS = ("relu", "relu6", "sigmoid", "hsigmoid", "hswish", "tanh", "leakyrelu")
#: The pairs measured by default (left side may be a fused group).
PAIRS: tuple[tuple[str, str], ...] = (
    *((a, f) for a in ("conv", "dwconv", "gconv") for f in (*ACT_FOLLOWERS, "bn", "add")),
    *(("conv-add", f) for f in ("relu", "relu6", "hswish")),
    ("gconv-add", "relu"),
    *(("fc", f) for f in ("relu", "relu6", "sigmoid", "hswish")),
    ("add", "relu"), ("add", "relu6"), ("bn", "relu"), ("maxpool", "relu"), ("avgpool", "relu"),
    ("concat", "relu"), ("relu", "relu6"), ("relu6", "relu"), ("relu", "relu"),
    # modern CNNs: layer scale after a convolution (folded into its weights?), GELU after one
    ("conv", "scale"), ("dwconv", "scale"), ("conv", "gelu"), ("fc", "bn"),
)
#: Residual sums after a convolution that runs in the plain layout (channels not a multiple
#: of the block): ONNX Runtime merges them into one ``FusedConv`` there too (measured), so
#: they are measured apart, at an unaligned width, under ``plain:`` keys.
PLAIN_PAIRS: tuple[tuple[str, str], ...] = (("conv", "add"), ("dwconv", "add"), ("gconv", "add"))
MODE_CATEGORIES = ("relu", "relu6", "clip", "sigmoid", "hsigmoid", "hswish", "tanh", "leakyrelu", "add", "mul",
                   "concat", "maxpool", "avgpool", "gap", "bn")
NCHWC_DOMAIN = "com.microsoft.nchwc"
RULES_PROTOCOL = TimingProtocol(warmup=5, min_repeats=20, max_repeats=60, number=1, min_time_ms=0.0,
                                time_budget_s=2.0, sessions=1)


def _target(data: bytes, c_in: int, hw: int) -> OnnxTarget:
    return OnnxTarget(data, (("x", (1, c_in, hw, hw), 1),), "probe")


def _pair_model(left: str, right: str | None, c: int, hw: int) -> bytes:
    """prefix -> left (-> right); ``right`` None: left alone. ``left`` may be ``A-add``."""
    first = left.split("-")[0]
    pg = ProbeGraph(c, hw)
    pre, t = pg.prefix(c, vector=first == "fc")
    y = apply(pg, first, t, pre, "A", c)
    if left.endswith("-add"):
        y = pg.binary(y, t, "add", "A2")
    if right is not None:
        y = apply(pg, right, y, t, "B", c)
    return pg.to_bytes([y])


def _single_model(op: str, c: int, hw: int, vector: bool) -> bytes:
    pg = ProbeGraph(c, hw)
    pre, t = pg.prefix(c, vector=vector)
    return pg.to_bytes([apply(pg, op, t, pre, "B", c)])


def _op_time(backend: Any, data: bytes, c: int, hw: int, protocol: TimingProtocol) -> tuple[float, bool, int]:
    """Sum of per-node median times of the nodes traced to the ops under test, whether
    every prefix node kept a node of its own (else the probe is inconclusive), and how
    many executed nodes the ops under test became."""
    model = import_onnx(data, name="probe")
    prof = profile_nodes(backend, _target(data, c, hw), protocol)
    traced = trace_nodes(model.graph, prof["nodes"])
    total, seen, count = 0.0, set(), 0
    for n, (kind, ref) in zip(prof["nodes"], traced):
        if kind != "node":
            continue
        name = model.graph.nodes[ref].name
        if name in PREFIX_NODES:
            seen.add(name)
            continue
        total += statistics.median(n["samples_ms"])
        count += 1
    expected = {n.name for n in model.graph.nodes if n.name in PREFIX_NODES}
    return total, seen == expected, count


def measure_pairs(backend: Any, pairs: tuple[tuple[str, str], ...] = PAIRS, *, c: int = 32, hw: int = 56,
                  share: float = 0.5, protocol: TimingProtocol = RULES_PROTOCOL,
                  progress: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """``{"A>B": {t1, t2, t12, gain, fused}}`` for each pair (times in ms)."""
    cache: dict[tuple[str, str | None, bool], tuple[float, bool, int]] = {}

    def timed(left: str, right: str | None, vector: bool) -> tuple[float, bool, int]:
        key = (left, right, vector)
        if key not in cache:
            data = _pair_model(left, right, c, hw) if left else _single_model(right or "", c, hw, vector)
            cache[key] = _op_time(backend, data, c, hw, protocol)
        return cache[key]

    out: dict[str, dict[str, Any]] = {}
    for left, right in pairs:
        if progress:
            progress(f"{left}>{right}")
        vec = left.startswith("fc")
        (t1, ok1, n1), (t2, ok2, n2), (t12, ok12, n12) = \
            timed(left, None, vec), timed("", right, vec), timed(left, right, vec)
        gain = t1 + t2 - t12
        ok = ok1 and ok2 and ok12 and min(t1, t2) > 0
        out[f"{left}>{right}"] = {"t1": round(t1, 5), "t2": round(t2, 5), "t12": round(t12, 5),
                                  "gain": round(gain, 5), "fused": bool(ok and gain > share * min(t1, t2)),
                                  "merged": bool(ok12 and n12 < n1 + n2), "conclusive": ok}
    return out


def measure_plain_pairs(backend: Any, block: int, *, hw: int = 56, share: float = 0.5,
                        protocol: TimingProtocol = RULES_PROTOCOL) -> dict[str, dict[str, Any]]:
    """``{"plain:A>B": ...}``: :data:`PLAIN_PAIRS` at a width that is not a multiple of the
    runtime's block (so the convolution stays in the plain layout); none without a block."""
    if block <= 0:
        return {}
    c = 4 * block - 2
    timed = measure_pairs(backend, PLAIN_PAIRS, c=c, hw=hw, share=share, protocol=protocol)
    return {f"plain:{k}": {**v, "c": c} for k, v in timed.items()}


def measure_rules(backend: Any, *, share: float = 0.5, pairs: tuple[tuple[str, str], ...] = PAIRS,
                  protocol: TimingProtocol = RULES_PROTOCOL,
                  progress: Callable[[str], None] | None = None) -> FusionRules:
    """Layout probes, then timed pairs: the complete rules of this device and backend."""
    from hwnas.profilers.layout import measure_layout
    from hwnas.profilers.token_rules import measure_token_rules

    lay = measure_layout(backend)
    timed = measure_pairs(backend, pairs, share=share, protocol=protocol, progress=progress)
    timed.update(measure_plain_pairs(backend, int(lay["block"]), share=share, protocol=protocol))
    timed.update(measure_token_rules(backend))  # transformer pairs and patterns (structural)
    return FusionRules(backend=backend.name, share=share, pairs=timed, block=int(lay["block"]),
                       modes=lay["modes"], conv=lay["conv"],
                       meta={"protocol": protocol.to_dict(), "probe": {"c": 32, "hw": 56}})
