"""Kernel training data from a cost store: what ``hwnas profile --kernels`` measured.

Why a reader of its own: the unit of data is a kernel inside a network (one ``block``
row per kernel, its samples the per-run times the runtime's profiler gave it), grouped
by network so that a held-out split never puts kernels of one network on both sides, and
only networks whose kernel detection matched what the runtime executed are used (a
kernel the runtime fused into a neighbour has no time of its own, and the neighbour's
time is then not a kernel's time).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.errors import CostModelError
from hwnas.nn.kernels.rules import KIND as RULES_KIND
from hwnas.nn.kernels.rules import FusionRules
from hwnas.primitives import Primitive

log = logging.getLogger(__name__)

JOB = "kernels"


@dataclass
class KernelNet:
    """One measured random network: end-to-end median and its kernels' medians."""

    hash: str
    e2e_ms: float
    kernels: list[Primitive]
    kernel_ms: list[float]
    round: int = 0
    blocks: list[str] = field(default_factory=list)


@dataclass
class KernelData:
    nets: list[KernelNet]
    rules: FusionRules
    device: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)

    def kernels(self, idx: np.ndarray | None = None) -> tuple[list[Primitive], np.ndarray]:
        """All (kernel, median ms) of the networks ``idx`` (all when None)."""
        nets = self.nets if idx is None else [self.nets[i] for i in idx]
        prims = [p for n in nets for p in n.kernels]
        ms = np.asarray([m for n in nets for m in n.kernel_ms], dtype=np.float64)
        return prims, ms


def load_kernel_data(store: Any, device: str | int, backend: str = "onnxruntime", *, clean_only: bool = True,
                     max_round: int | None = None) -> KernelData:
    """The kernel job's networks for one device and backend (rounds up to ``max_round``)."""
    dev = store.find_device(device)
    rec = store.rules(dev["id"], backend, RULES_KIND)
    if rec is None:
        raise CostModelError(f"{store.path}: no fusion rules for device {dev['name']!r} / {backend}; "
                             "run `hwnas profile --kernels` first")
    rows = store.query(device_id=dev["id"], backend=backend, kind="network", ok_only=True, latest=True)
    nets_rows = {r["target"]: r for r in rows if (r["extra"] or {}).get("job") == JOB
                 and (max_round is None or int(r["extra"].get("round", 0)) <= max_round)}
    dirty = sum(1 for r in nets_rows.values() if not r["extra"].get("detection", {}).get("clean", False))
    if clean_only:
        nets_rows = {h: r for h, r in nets_rows.items() if r["extra"].get("detection", {}).get("clean", False)}
    blocks: dict[str, list[dict[str, Any]]] = {}
    for b in store.query(device_id=dev["id"], backend=backend, kind="block", ok_only=True, latest=True):
        if b["network"] in nets_rows and b["settings_hash"] == nets_rows[b["network"]]["settings_hash"]:
            blocks.setdefault(b["network"], []).append(b)
    cache: dict[str, Primitive] = {}
    arch = {n.hash: a or {} for n, a in store.networks(JOB)}
    nets: list[KernelNet] = []
    for h, r in nets_rows.items():
        bs = sorted(blocks.get(h, []), key=lambda b: b["position"])
        if not bs:
            continue
        for b in bs:
            if b["target"] not in cache:
                cache[b["target"]] = store.primitive(b["target"])
        prims = [cache[b["target"]] for b in bs]
        nets.append(KernelNet(h, float(r["median_ms"]), prims, [float(b["median_ms"]) for b in bs],
                              int(r["extra"].get("round", 0)), list(arch.get(h, {}).get("blocks", []))))
    if not nets:
        raise CostModelError(f"{store.path}: no kernel measurements for device {dev['name']!r} / {backend}; "
                             "run `hwnas profile --kernels` first")
    summary = {"source": str(store.path), "device": dev["name"], "fingerprint": dev["fingerprint"],
               "backend": backend, "networks": len(nets), "networks_with_detection_mismatch": dirty,
               "kernels": sum(len(n.kernels) for n in nets)}
    return KernelData(nets, FusionRules.from_dict(rec["data"]),
                      {"name": dev["name"], "fingerprint": dev["fingerprint"], "info": dev["info"]}, summary)
