"""Predict with a kernel model: any ONNX model (with a per-kernel breakdown), or the
networks of a search space (so hardware objectives need no network measurements).

Search-space networks are NetworkSpecs of blocks; they are built as torch modules,
exported to ONNX and detected like any model, because which kernels a block becomes
(and where the runtime reorders data between blocks) is a property of the whole graph.
Each distinct network is exported once per model object (cached by content hash).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.nn.kernels import FusionRules, detect
from hwnas.nn.onnx_graph import OnnxModel, import_onnx
from hwnas.primitives import NetworkSpec


@dataclass
class Prediction:
    """A model's predicted latency and where it goes."""

    source: str
    total_ms: float
    kernels: list[dict[str, Any]]
    naive_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "total_ms": self.total_ms, "naive_per_node_ms": self.naive_ms,
                "kernels": self.kernels}


def predict_onnx(model: Any, onnx_model: OnnxModel, *, naive: bool = True) -> Prediction:
    """Latency of an imported ONNX model, per kernel; ``naive`` adds the per-node sum (every
    ONNX node its own kernel, no fusion, no layout changes) for comparison."""
    kg = detect(onnx_model.graph, model.rules())
    total, per = model.predict_graph(kg)
    g = onnx_model.graph
    rows = []
    for k, ms in zip(kg.kernels, per):
        nodes = [g.nodes[n].name for n in k.nodes]
        rows.append({"kernel": k.prim.key, "op": k.prim.op, "ms": float(ms),
                     "share": float(ms / max(per.sum(), 1e-12)), "nodes": nodes or [f"reorder of {k.tensor}"]})
    return Prediction(onnx_model.source, total, rows, naive_sum(model, onnx_model) if naive else None)


def naive_sum(model: Any, onnx_model: OnnxModel) -> float:
    """The naive per-node sum: the same predictors on every ONNX node as its own kernel."""
    kg = detect(onnx_model.graph, FusionRules.none(), composites=False)
    # the common per-kernel cost: family costs describe kernels as the runtime executes them,
    # and the naive view's kernels are not those
    return model.compose(model.predict_network([k.prim for k in kg.kernels], fallback=True))


def _network_onnx(net: NetworkSpec) -> OnnxModel:
    from hwnas.nn.export import export_bytes

    return import_onnx(export_bytes(net), name=f"network {net.hash}")


def predict_networks(model: Any, networks: Sequence[NetworkSpec]) -> np.ndarray:
    cache: dict[str, float] = model.__dict__.setdefault("_net_cache", {})
    rules = model.rules()
    out = np.empty(len(networks))
    for i, net in enumerate(networks):
        if net.hash not in cache:
            kg = detect(_network_onnx(net).graph, rules)
            cache[net.hash] = model.predict_graph(kg)[0]
        out[i] = cache[net.hash]
    return out
