"""Synthetic networks, cost tables and a known non-additive latency law.

Why: tests and the speed benchmark need many networks with a ground truth that a
plain sum cannot explain (so a learned model has something to learn) without any
hardware. The law multiplies block costs by context factors (a strided block after a
large-kernel block, the first block of a stage), adds a per-block overhead and a
cross term between the two halves of the network, plus seeded 1% noise.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from hwnas.primitives import NetworkSpec, Primitive, unique_primitives


def block_cost(p: Primitive) -> float:
    """A made-up but plausible table value (ms): MAC count plus a fixed overhead."""
    h_out, w_out = p.out_hw
    e = float(p.expansion)
    if p.op == "mbconv":
        mid = p.c_in * e
        macs = p.h * p.w * p.c_in * mid + h_out * w_out * mid * (p.kernel ** 2 + p.c_out)
    elif p.op in ("pool", "skip_connect", "identity", "none"):
        macs = p.h * p.w * p.c_in
    else:
        macs = h_out * w_out * p.kernel ** 2 * p.c_in * p.c_out / p.groups
    return 0.01 + macs / 2e8


def make_table(networks: Sequence[NetworkSpec]) -> dict[str, float]:
    """Table of :func:`block_cost` for every primitive of ``networks``."""
    return {p.key: block_cost(p) for p in unique_primitives(networks)}


def true_latency(net: NetworkSpec, table: Mapping[str, float]) -> float:
    """The non-additive law (noise-free)."""
    costs = [table[p.key] for p in net.nodes]
    total = 0.0
    for i, (p, c) in enumerate(zip(net.nodes, costs)):
        factor = 1.0
        if i > 0:
            prev = net.nodes[i - 1]
            if p.stride > 1 and prev.kernel >= 5:
                factor *= 1.3
            if p.c_in != prev.c_in:
                factor *= 1.1
        total += c * factor + 0.004
    half = len(costs) // 2
    total += 0.15 * math.sqrt(sum(costs[:half]) * sum(costs[half:]))
    return total


def synthetic_dataset(space: str = "mbv2", n: int = 300, seed: int = 0, noise: float = 0.01,
                      **space_options: object) -> tuple[list[NetworkSpec], np.ndarray, dict[str, float]]:
    """``n`` distinct random networks of a registered space, their law latencies and the table."""
    from hwnas import registry

    sp = registry.build("search_space", space, **space_options)
    rng = np.random.default_rng(seed)
    nets: dict[str, NetworkSpec] = {}
    tries = 0
    while len(nets) < n and tries < 50 * n:
        net = sp.to_network(sp.sample(rng))
        nets.setdefault(net.hash, net)
        tries += 1
    networks = list(nets.values())
    table = make_table(networks)
    y = np.array([true_latency(net, table) for net in networks])
    y *= np.exp(rng.normal(0.0, noise, size=len(y)))
    return networks, y, table
