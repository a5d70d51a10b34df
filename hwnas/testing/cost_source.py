"""Contract suite of the ``cost_source`` role (see hwnas/cost_models/source.py).

Every consumer of hardware costs (the hardware objectives, ``hwnas predict``, the kernel
job's advice) relies on a source saying truthfully what it prices and giving the same
numbers every time without touching its files, so those are the rules checked: the
metadata, the shape and finiteness of costs for each kind it prices, one-line refusals
(a kind it does not price, an unknown item or network, another metric), additivity where
declared, and read-only use (the files it reads keep their bytes and times; the only new
files allowed are SQLite's ``-shm``/``-wal`` side files of a store opened read-only).

The examples of the built-in sources are built here (``*_example``) and listed in the one
table of examples, :mod:`hwnas.testing.examples`, not on the classes, so production code
never imports this package; a plugin's source gives its own through a ``example(tmp_dir)``
class method returning an :class:`Example`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.cost_models.source import KINDS, TARGETS, CostSource, SourceRequest
from hwnas.errors import ConfigError, HwnasError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.testing._common import ContractError, component, example, expect, finite

ROLE = "cost_source"


@dataclass
class Example:
    """How to build one source, what to price with it, and the files it must not touch."""

    build: Callable[[], CostSource]
    items: Sequence[Primitive] = ()
    networks: Sequence[NetworkSpec] = ()
    unknown: Sequence[Primitive | NetworkSpec] = ()
    files: Sequence[Path] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def synthetic() -> tuple[list[NetworkSpec], dict[str, float]]:
    from hwnas.cost_models.synthetic import synthetic_dataset

    nets, _, table = synthetic_dataset("mbv2", n=6, seed=3, resolution=32, width=0.5)
    return nets, table


def _stranger() -> Primitive:
    return Primitive("conv", 7, 13, 11, 11, kernel=3)  # in no example's table


def store_example(tmp_dir: Path) -> Example:
    """A store of the synthetic primitives whose robust latency (1.5x) is not the median."""
    from hwnas.cost_models.source_tables import StoreSource
    from hwnas.store import Device, Measurement, Store

    nets, table = synthetic()
    path = tmp_dir / "cost-source.sqlite"
    with Store(path) as st:
        dev = st.add_device(Device(name="fake-cpu", kind="cpu", cpu_model="fake", cores=2, threads=1))
        rows = []
        for key, v in table.items():
            st.add_primitive(next(p for n in nets for p in n.nodes if p.key == key))
            rows.append(Measurement("primitive", key, "torch", {"batch": 1}, samples_ms=(0.9 * v, v, 1.1 * v),
                                    estimate_ms=1.5 * v))
        st.add_measurements(dev, rows)
    prims = list({p.key: p for n in nets for p in n.nodes}.values())
    return Example(lambda: StoreSource(path, "fake-cpu", "torch"), prims, nets[:4], [_stranger()], [path])


def _nb201_networks(archs: Sequence[str]) -> list[NetworkSpec]:
    from hwnas import registry

    space = registry.build("search_space", "nb201")
    return [space.to_network(space.from_str(a)) for a in archs]


def _unknown_network(net: NetworkSpec) -> NetworkSpec:
    return NetworkSpec(net.input_shape, net.nodes, net.edges, (("arch", "|none~0|+|none~0|none~1|+|"),))


def table_example(tmp_dir: Path) -> Example:
    """A CSV of three NAS-Bench-201 cells with made-up latencies."""
    from hwnas.cost_models.source_tables import TableSource

    archs = ["|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
             "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
             "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"]
    path = tmp_dir / "cost-source-table.csv"
    path.write_text("arch_str,made_up_ms\n" + "".join(f"{a},{1.5 + i}\n" for i, a in enumerate(archs)))
    nets = _nb201_networks(archs)
    return Example(lambda: TableSource(path, "made_up_ms"), (), nets, [_unknown_network(nets[0])], [path])


def model_example(tmp_dir: Path) -> Example:
    """A saved ``lut`` model of the synthetic table whose manifest says latency in ms."""
    from hwnas.cost_models.lut import LUTModel
    from hwnas.cost_models.persistence import save_model
    from hwnas.cost_models.source_models import model_source

    nets, table = synthetic()
    folder = save_model(LUTModel().fit(nets, None, table), tmp_dir / "cost-source-model",
                        {"device": "fake", "training": {"target": "latency", "unit": "ms"}})
    prims = list({p.key: p for n in nets for p in n.nodes}.values())
    return Example(lambda: model_source(folder), prims, nets[:4], [_stranger()],
                   sorted(folder.iterdir()))


def kernel_example(tmp_dir: Path) -> Example:
    """A kernel predictor fitted on made-up convolution kernels, pricing kernels."""
    from hwnas.cost_models.kernel_data import KernelData, KernelNet
    from hwnas.cost_models.kernel_model import KernelCostModel
    from hwnas.cost_models.persistence import load_model, save_model
    from hwnas.cost_models.source_models import KernelSource
    from hwnas.nn.kernels import FusionRules

    rng = np.random.default_rng(0)
    nets = []
    for i in range(8):
        prims = [Primitive("conv-relu", int(c), int(c), int(h), int(h), kernel=3, act="relu")
                 for c, h in zip(rng.choice([8, 16, 32], 6), rng.choice([7, 14, 28], 6))]
        ms = [1e-3 + p.c_in * p.c_out * 9 * p.h * p.w / 2e8 for p in prims]
        nets.append(KernelNet(f"n{i}", 0.01 + sum(ms), prims, ms))
    model = KernelCostModel(n_estimators=20, min_samples=100).fit_kernels(KernelData(nets, FusionRules(),
                                                                                      {"name": "fake"}))
    folder = save_model(model, tmp_dir / "cost-source-kernel", {"training": {"unit": "ms"}})
    items = [p for n in nets[:3] for p in n.kernels]
    blocks = [NetworkSpec.chain((c, 14, 14), [Primitive("conv", c, 16, 14, 14, kernel=3, act="none")]) for c in (8, 16)]
    return Example(lambda: KernelSource(load_model(folder), where=str(folder), items="kernels"), items, blocks,
                   [Primitive("maxpool", 8, 8, 8, 8, kernel=3)], sorted(folder.iterdir()))


def asset_example(tmp_dir: Path) -> Example:
    """The shipped NAS-Bench-201 latency table, column gold_6226_ms."""
    from hwnas import assets
    from hwnas.cost_models.source import open_source

    archs = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
             "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"]
    nets = _nb201_networks(archs)
    req = SourceRequest(table="asset:nb201-latency", column="gold_6226_ms")
    return Example(lambda: open_source(req), (), nets, [_unknown_network(nets[0])],
                   sorted(assets.get("asset:nb201-latency").dir.iterdir()))




def one_line(exc: BaseException) -> bool:
    return bool(str(exc)) and "\n" not in str(exc)


def refused(name: str, call: Callable[[], Any], rule: str, kind: type = HwnasError) -> BaseException:
    try:
        call()
    except kind as exc:
        expect(one_line(exc), ROLE, name, f"{rule}: the refusal must be one line, got {str(exc)!r}")
        return exc
    raise ContractError(f"{ROLE} {name!r}: {rule}")


def check_meta(name: str, src: Any) -> None:
    expect(isinstance(src, CostSource), ROLE, name, "must subclass hwnas.cost_models.source.CostSource")
    expect(src.target in TARGETS and src.unit == TARGETS[src.target], ROLE, name,
           f"target must be one of {sorted(TARGETS)} with its unit, got {src.target!r} in {src.unit!r}")
    for attr in ("device", "estimator", "where"):
        expect(isinstance(getattr(src, attr), str) and getattr(src, attr), ROLE, name, f"{attr} must be a non-empty str")
    expect(isinstance(src.prices, frozenset) and src.prices and src.prices <= set(KINDS), ROLE, name,
           f"prices must be a non-empty frozenset of {KINDS}, got {src.prices!r}")


def check_costs(name: str, src: CostSource, things: Sequence[Any], kind: str) -> np.ndarray:
    expect(len(things) > 0, ROLE, name, f"the example must give {kind} to price (it prices {kind})")
    out = src.cost(list(things))
    expect(isinstance(out, np.ndarray) and out.shape == (len(things),) and np.issubdtype(out.dtype, np.floating),
           ROLE, name, f"cost({kind}) must return a float ndarray of shape ({len(things)},)")
    expect(finite(out) and bool(np.all(out >= 0)), ROLE, name, f"cost({kind}) must be finite and >= 0, got {out}")
    expect(np.array_equal(src.cost(list(things)), out), ROLE, name, f"cost({kind}) must repeat exactly")
    single = src.cost(things[0])
    expect(isinstance(single, float) and single == out[0], ROLE, name, "cost(one) must be the float cost([one])[0]")
    expect(np.asarray(src.cost([])).shape == (0,), ROLE, name, "cost([]) must return an empty array")
    return out


def check_pricing(name: str, src: CostSource, ex: Example) -> None:
    for kind, things in (("items", ex.items), ("networks", ex.networks)):
        if kind in src.prices:
            check_costs(name, src, things, kind)
        elif things:
            refused(name, lambda: src.cost(list(things)), f"cost({kind}) must be refused: prices is {set(src.prices)}")
    for u in ex.unknown:
        refused(name, lambda: src.cost([u]), f"pricing an unknown {type(u).__name__} must raise a HwnasError")
    if src.additive:
        expect({"items", "networks"} <= src.prices, ROLE, name, "an additive source must price items and networks")
        for net in ex.networks:
            expect(abs(src.cost(net) - float(src.cost(list(net.nodes)).sum())) <= 1e-9 * max(1.0, src.cost(net)),
                   ROLE, name, "additive: a network must cost the sum of its nodes' item costs")


def check_require(name: str, src: CostSource) -> None:
    src.require(src.target)
    other = next(t for t in TARGETS if t != src.target)
    exc = refused(name, lambda: src.require(other), f"require({other!r}) must refuse a source of {src.target}",
                  ConfigError)
    expect(src.where in str(exc) and src.target in str(exc), ROLE, name,
           f"the refusal must name the source and what it holds, got {str(exc)!r}")


def _snapshot(files: Sequence[Path]) -> tuple[dict[Path, tuple[bytes, int]], set[Path]]:
    folders = {f.parent for f in files}
    return ({f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files},
            {p for d in folders for p in d.iterdir()})


def check(name: str, tmp_dir: Path) -> None:
    """Metadata, costs, refusals, additivity and read-only use on the example."""
    cls = component(ROLE, name)
    ex = example(ROLE, name, cls, tmp_dir)
    expect(isinstance(ex, Example), ROLE, name, "example(tmp_dir) must return hwnas.testing.cost_source.Example")
    before, listing = _snapshot(ex.files)
    src = ex.build()
    expect(type(src) is cls, ROLE, name, f"the example built a {type(src).__name__}, not {cls.__name__}")
    check_meta(name, src)
    check_pricing(name, src, ex)
    check_require(name, src)
    after, listing_after = _snapshot(ex.files)
    expect(after == before, ROLE, name, "building and pricing must leave the files it reads unchanged (read-only)")
    new = {p.name for p in listing_after - listing if not p.name.endswith(("-shm", "-wal"))}
    expect(not new, ROLE, name, f"building and pricing must create no file, created {sorted(new)}")
