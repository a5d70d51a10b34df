"""Deterministic fakes: a toy search space with a known optimum and a fake backend.

Why ship them in the package: the contract suites (and plugin authors' tests) need a
space whose best architecture is known and a backend whose "measurements" are the same
on every machine, so the whole profile -> fit -> search loop can be tested without
hardware and without timing noise. They are registered (as ``toy`` and ``fake``) only when
a test suite asks: :func:`hwnas.testing.register_fakes` in-process, or the plugin entry
point :mod:`hwnas.testing.plugin` in every process a harness starts (a dry run of the
toolflow: ``PYTHONPATH=tests/fakes_plugin hwnas profile --space toy --backend fake``).
Production code never imports this package, so a user's ``hwnas`` never lists them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.backends.base import Backend, Prepared, Target
from hwnas.registry import register as registry_register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, Arch, Decision, SearchSpace

#: Small config sections the built-in components' ``example`` hooks share: a search on
#: them trains and scores in well under a second on one core.
TINY_NB201: dict[str, Any] = {"type": "nb201", "channels": 4, "cells_per_stage": 1, "resolution": 8,
                              "num_classes": 4}
TINY_DATA: dict[str, Any] = {"type": "synthetic", "resolution": 8, "samples": 80, "num_classes": 4}
TINY_TOY: dict[str, Any] = {"type": "toy", "n": 4, "k": 3}
#: A darts space of seconds: 3 cells x 4 channels, 2 nodes, 8x8 grey inputs (digits-sized).
TINY_DARTS: dict[str, Any] = {"type": "darts", "cells": 3, "channels": 4, "nodes": 2, "resolution": 8,
                              "in_channels": 1}


class ToySpace(SearchSpace):
    """Toy chain of fully connected layers: `n` decisions of `k` widths (known optimum)."""

    @dataclass(frozen=True)
    class Options:
        n: int = opt(12, min=1, max=64, help="number of decisions (layers)")
        k: int = opt(5, min=2, max=16, help="options per decision (widths 8, 16, ...)")
        in_features: int = opt(8, min=1, max=MAX_CHANNELS, help="input features")
        num_classes: int = opt(10, min=2, max=MAX_CLASSES, help="classifier outputs")

    def __init__(self, options: ToySpace.Options | None = None, **kw: Any) -> None:
        self.options = options or ToySpace.Options(**kw)
        super().__init__()

    @property
    def n(self) -> int:
        return self.options.n

    @property
    def k(self) -> int:
        return self.options.k

    def build_decisions(self) -> Sequence[Decision]:
        return [Decision(f"d{i}", tuple(range(self.options.k))) for i in range(self.options.n)]

    def _width(self, choice: int) -> int:
        return 8 * (choice + 1)

    def to_network(self, arch: Arch) -> NetworkSpec:
        o = self.options
        arch = self.validate(arch)
        nodes, c = [], o.in_features
        for a in arch:
            nodes.append(Primitive("fc", c, self._width(a), 1, 1))
            c = self._width(a)
        nodes.append(Primitive("fc", c, o.num_classes, 1, 1))
        edges = tuple((i, i + 1) for i in range(len(nodes) - 1))
        return NetworkSpec((o.in_features, 1, 1), tuple(nodes), edges, (("arch", self.to_str(arch)), ("space", "toy")))

    def primitives(self) -> list[Primitive]:
        o = self.options
        widths = [o.in_features] + [self._width(c) for c in range(o.k)]
        prims = {Primitive("fc", a, self._width(b), 1, 1) for a in widths for b in range(o.k)}
        prims |= {Primitive("fc", a, o.num_classes, 1, 1) for a in widths}
        return sorted(prims, key=lambda p: p.key)

    def optimum(self) -> float:
        """Best value of :func:`toy_reward` (every decision at its last option)."""
        return float(self.options.n * (self.options.k - 1))


def toy_reward(arch: Arch) -> float:
    """The toy objective: sum of the choice indices (optimum: all at the last option)."""
    return float(sum(arch))


def macs(p: Primitive) -> float:
    """Multiply-accumulates of a primitive (a rough, deterministic cost measure)."""
    oh, ow = p.out_hw
    per_out = (p.c_in / p.groups) * p.kernel * p.kernel * max(p.expansion, 1.0)
    return float(oh * ow * p.c_out * per_out)


def fake_latency_ms(target: Target) -> float:
    """Deterministic "latency": 2 µs per primitive call plus 0.1 ns per MAC; a network
    costs a little less than its blocks summed (as fused runtimes do), so cost models
    have a real gap to learn."""
    def prim(p: Primitive) -> float:
        return 0.002 + macs(p) * 1e-7

    if isinstance(target, Primitive):
        return prim(target)
    total = sum(prim(p) for p in target.nodes)
    return 0.85 * total + 0.001 * math.sqrt(len(target.nodes))


def output_shape(target: Target, batch: int = 1) -> tuple[int, ...]:
    """Shape of the target's output, as the profilers' builders define it (``fc`` gives
    ``(N, c_out)``, every other op ``(N, c_out, *out_hw)``; a network: its last node)."""
    last = target if isinstance(target, Primitive) else target.nodes[-1]
    return (batch, last.c_out) if last.op == "fc" else (batch, last.c_out, *last.out_hw)


class FakeBackend(Backend):
    """Deterministic fake timings from MACs (tests and dry runs; measures nothing real)."""

    name = "fake"
    #: Not part of ``--backend all``: it measures nothing real.
    in_all = False

    def backend_settings(self) -> dict[str, Any]:
        return {"model": "2us + 0.1ns/MAC"}

    def versions(self) -> dict[str, str]:
        return {"fake": "1"}

    def prepare(self, target: Target, batch: int = 1) -> Prepared:
        t0 = time.perf_counter()
        seconds = fake_latency_ms(target) * batch / 1000.0

        def run() -> None:
            return None

        shape = output_shape(target, batch)

        def output() -> np.ndarray:
            return np.zeros(shape, dtype=np.float32)

        def repeat_timer(call: Callable[[], Any], number: int) -> float:
            for _ in range(number):
                call()
            return seconds * number

        return Prepared(run, output, repeat_timer=repeat_timer,
                        overhead_s={"prepare": time.perf_counter() - t0})


def fake_cost_model(folder: Path, space: SearchSpace, samples: int = 8, seed: int = 0) -> tuple[Path, float]:
    """A saved ``lut`` cost model of the space's primitives with :func:`fake_latency_ms`
    values, and the median latency it predicts for a few random architectures.

    Why: a hardware objective's example needs a cost model on disk without profiling;
    the median gives a budget that some architectures meet and some break.
    """
    from hwnas.cost_models.lut import LUTModel
    from hwnas.cost_models.persistence import save_model

    rng = np.random.default_rng(seed)
    nets = [space.to_network(space.sample(rng)) for _ in range(samples)]
    table = {p.key: fake_latency_ms(p) for p in space.primitives()}
    model = LUTModel().fit(nets, None, table)
    save_model(model, folder, meta={"device": "fake", "training": {"source": "hwnas.testing.fakes", "target": "latency",
                                                                   "unit": "ms"}})
    return folder, float(np.median(model.predict(nets)))


def cost_model_example(tmp_dir: Path, space_config: Mapping[str, Any], objective: str) -> dict[str, Any]:
    """A run config whose ``objective`` (``hardware``, ``diff_hardware``) reads a fake ``lut``
    cost model of ``space_config``'s space, written under ``tmp_dir``: the examples of the
    hardware objectives."""
    from hwnas import registry

    space = registry.build("search_space", space_config["type"],
                           **{k: v for k, v in space_config.items() if k != "type"})
    model, _ = fake_cost_model(tmp_dir / f"{objective}-model", space)
    return {"search_space": dict(space_config), "objective": {"type": objective, "model": str(model)}}


def register_all() -> None:
    """Register the toy space (``toy``) and the fake backend (``fake``); idempotent."""
    registry_register("search_space", "toy")(ToySpace)
    registry_register("backend", "fake")(FakeBackend)
