"""Measure the transformer-era rules: which token operator pairs and which exporter
patterns the runtime runs as fewer nodes (see hwnas/nn/kernels/token_patterns.py).

Structural, like the layout probes: each probe (hwnas/nn/kernels/token_probes.py) is
compiled once and the graph the runtime executes is read back. The executed nodes of the
probe's region are those not traced to its context nodes. Views the runtime inserts
(``Reshape``/``Squeeze``/``Unsqueeze`` around a ``Gemm`` over tokens) are not counted.

* a pair ``A>B`` is *merged* when A then B runs as fewer region nodes than A alone plus
  B alone (ONNX Runtime 1.32: ``MatMul`` + bias ``Add`` -> ``Gemm``, a ``MatMul`` and a
  scalar ``Mul`` -> ``FusedMatMul``);
* a pattern is *merged* when the op type that marks its decomposed form no longer runs
  (``ReduceMean`` for a layer norm, ``Erf`` for GELU, ``Gather`` for q/k/v picks, ...).

The results go into the rules' pairs (``A>B`` and ``pattern:NAME``), with the executed
op types as evidence.
"""
from __future__ import annotations

from typing import Any

from hwnas.nn.kernels.attribution import trace_nodes
from hwnas.nn.kernels.token_patterns import PATTERNS
from hwnas.nn.kernels.token_probes import PATTERN_PROBES, TOKEN_PAIRS, VANISHES, pair_probe, pattern_probe
from hwnas.profilers.layout import _executed

VIEWS = ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def region_ops(backend: Any, data: bytes, region: set[str], *, views: bool = False) -> list[str]:
    """Op types the runtime executes for a probe's region (views excluded unless ``views``)."""
    model, executed = _executed(backend, data)
    traced = trace_nodes(model.graph, executed)
    names = [n.name for n in model.graph.nodes]
    out = []
    for n, (kind, ref) in zip(executed, traced):
        outside = kind == "node" and names[ref] not in region
        if kind == "reorder" or outside or (n["op_type"] in VIEWS and not views):
            continue
        out.append(n["op_type"])
    return out


def measure_token_rules(backend: Any) -> dict[str, dict[str, Any]]:
    """``{"A>B": {...}, "pattern:NAME": {...}}`` with ``merged`` and the executed op types."""
    out: dict[str, dict[str, Any]] = {}
    alone: dict[tuple[str | None, str | None], list[str]] = {}

    def ops(left: str | None, right: str | None) -> list[str]:
        if (left, right) not in alone:  # reshape pairs: the views are what is measured
            views = "reshape" in f"{left}{right}"
            alone[(left, right)] = region_ops(backend, *pair_probe(left, right), views=views)
        return alone[(left, right)]

    for left, right in TOKEN_PAIRS:
        n1, n2, n12 = ops(left, None), ops(None, right), ops(left, right)
        cat = "scale" if right in ("bias", "scale") else right
        out[f"{left}>{cat}"] = {"merged": len(n12) < len(n1) + len(n2), "executed": n12,
                                "alone": [n1, n2], "conclusive": bool(n1 and n2), "structural": True}
    for name in PATTERN_PROBES:
        data, region = pattern_probe(name)
        executed = region_ops(backend, data, region)
        out[f"pattern:{name}"] = {"merged": VANISHES[name] not in executed, "executed": executed,
                                  "structural": True, "used": name in PATTERNS}
    return out
