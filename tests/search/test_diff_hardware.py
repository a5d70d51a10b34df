"""The differentiable hardware objective: expected cost = table sums, gradients to the
logits, both losses, both sources, and a source missing an op of the space."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.config import build_space, parse_options
from hwnas.cost_models import save_model
from hwnas.cost_models.lut import LUTModel
from hwnas.errors import ConfigError
from hwnas.search.archweights import ArchWeights, from_numpy, masked_softmax
from hwnas.search.objectives.diff_hardware import DiffHardwareObjective
from hwnas.search.rollout import Rollout

from .conftest import fake_store

FBNET = {"num_classes": 10, "resolution": 8, "in_channels": 1, "head_channels": 32}
DARTS = {"cells": 3, "channels": 4, "nodes": 2, "resolution": 8, "in_channels": 1}


def objective(space_name: str, space_opts: dict, store: Path, **opts: object) -> DiffHardwareObjective:
    o = parse_options(DiffHardwareObjective.Options, {"store": str(store), "device": "fake-cpu", "backend": "torch",
                                                      **opts}, "objective")
    return DiffHardwareObjective(o, space=build_space(space_name, space_opts))


def test_expected_latency_of_a_one_hot_chain_is_its_table_sum(tmp_path: Path) -> None:
    space = build_space("fbnet", FBNET)
    obj = objective("fbnet", FBNET, fake_store(tmp_path / "s.sqlite", space))
    for arch in (space.sample(np.random.default_rng(i)) for i in range(3)):
        derived = obj.perfs([Rollout(arch)])[0]["latency_ms"]
        expected = float(obj.table().expected(from_numpy(space.arch_weights(arch)).weights))
        assert expected == pytest.approx(derived, rel=1e-5)


def test_latency_gradients_steer_the_logits_to_cheaper_cells(tmp_path: Path) -> None:
    space = build_space("darts", DARTS)
    obj = objective("darts", DARTS, fake_store(tmp_path / "s.sqlite", space), loss="lagrange", budget=1e-4, lam=1.0)
    logits = [torch.zeros(g.shape, requires_grad=True) for g in space.param_groups()]
    opt = torch.optim.Adam(logits, lr=0.1)

    def rollout() -> Rollout:
        w = {g.name: masked_softmax(a, None) for g, a in zip(space.param_groups(), logits)}
        return Rollout(space.sample(np.random.default_rng(0)), arch_weights=ArchWeights(w))

    low = obj.table().minimum  # the cheapest cell everywhere
    start = float(obj.expected(rollout()).detach()) - low
    for _ in range(30):
        opt.zero_grad()
        obj.arch_loss(torch.tensor(1.0), rollout()).backward()
        assert all(float(a.grad.abs().sum()) > 0 for a in logits)
        opt.step()
    assert float(obj.expected(rollout()).detach()) - low < 0.5 * start  # most of the way to the cheapest
    cheap = space.genotype(space.derive({g.name: a.detach().numpy() for g, a in zip(space.param_groups(), logits)}))
    assert all(op not in ("sep_conv_5x5", "dil_conv_5x5") for node in cheap["normal"] for op, _ in node)


def test_fbnet_loss_and_the_model_source(tmp_path: Path) -> None:
    space = build_space("fbnet", FBNET)
    store = fake_store(tmp_path / "s.sqlite", space)
    obj = objective("fbnet", FBNET, store, a=0.2, b=0.6, scale=1000.0)
    w = from_numpy(space.arch_weights(space.sample(np.random.default_rng(0))))
    r = Rollout(space.sample(np.random.default_rng(0)), arch_weights=w)
    lat = float(obj.expected(r).detach())
    assert float(obj.arch_loss(torch.tensor(2.0), r)) == pytest.approx(2.0 * 0.2 * np.log(lat * 1000) ** 0.6, rel=1e-5)
    from hwnas.store import Store

    with Store(store, create=False) as st:
        prim = st.table(st.find_device("fake-cpu")["id"], "torch")
    save_model(LUTModel().fit([], None, prim), tmp_path / "lut")
    o = parse_options(DiffHardwareObjective.Options, {"model": str(tmp_path / "lut")}, "objective")
    by_model = DiffHardwareObjective(o, space=space)
    assert float(by_model.expected(r)) == pytest.approx(lat, rel=1e-5)
    with pytest.raises(ConfigError, match="objective.scale: the fbnet loss takes log"):
        objective("fbnet", FBNET, store, scale=1.0).arch_loss(torch.tensor(1.0), r)


def test_a_source_missing_an_op_of_the_space_is_named(tmp_path: Path) -> None:
    store = fake_store(tmp_path / "s.sqlite", build_space("darts", {**DARTS, "ops": ["skip_connect", "sep_conv_3x3"]}))
    obj = objective("darts", DARTS, store)
    with pytest.raises(ConfigError, match=r"objective.store: .*s.sqlite has no latency of primitive "
                                          r"'.*' \(op (none|pool|dil_conv|sep_conv)\) for device 'fake-cpu' / "
                                          r"backend 'torch' of space darts") as info:
        obj.table()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="give exactly one per-primitive cost source"):
        parse_options(DiffHardwareObjective.Options, {}, "objective")


def robust_store(path: Path, space: object) -> Path:
    """A store whose robust latency (``latency_ms``, 1.5x the median) differs from the median."""
    from hwnas.store import Device, Measurement, Store

    with Store(path) as st:
        dev = st.add_device(Device(name="fake-cpu", kind="cpu", cpu_model="fake", cores=2, threads=1))
        items = []
        for i, p in enumerate(space.primitives()):  # type: ignore[attr-defined]
            st.add_primitive(p)
            median = 0.01 * (i + 1)
            items.append(Measurement("primitive", p.key, "torch", {"batch": 1, "threads": 1},
                                     samples_ms=(median * 0.9, median, median * 1.1), estimate_ms=1.5 * median))
        st.add_measurements(dev, items)
    return path


def test_hardware_and_diff_hardware_price_items_alike(tmp_path: Path) -> None:
    """Regression (issue 27, defect 2): diff_hardware read median_ms where hardware reads the
    robust latency_ms, so the loss optimised another number than the report showed."""
    from hwnas.search.objectives.hardware import HardwareObjective
    from hwnas.store import Store

    space = build_space("fbnet", FBNET)
    store = robust_store(tmp_path / "s.sqlite", space)
    diff = objective("fbnet", FBNET, store)
    hw = HardwareObjective(parse_options(HardwareObjective.Options, {"store": str(store), "device": "fake-cpu",
                                                                     "backend": "torch"}, "objective"), space=space)
    prims = list({p.key: p for p in space.primitives()}.values())
    with Store(store, readonly=True) as st:
        robust = st.table(1, "torch", metric="latency_ms")
        median = st.table(1, "torch", metric="median_ms")
    assert all(robust[p.key] == pytest.approx(1.5 * median[p.key]) for p in prims)
    for arch in (space.sample(np.random.default_rng(i)) for i in range(3)):
        expected = float(diff.table().expected(from_numpy(space.arch_weights(arch)).weights))
        assert expected == pytest.approx(hw.perfs([Rollout(arch)])[0]["latency_ms"], rel=1e-5)
    assert diff._derived.source() is not hw.source()
    assert list(diff._derived.source().cost(prims)) == list(hw.source().cost(prims)) == [robust[p.key] for p in prims]


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_diff_hardware_reads_stores_read_only_and_accepts_assets(tmp_path: Path) -> None:
    """Regression (issue 27, defect 2): diff_hardware opened the store writable (changing
    its bytes) and refused asset: stores."""
    from hwnas import assets

    space = build_space("fbnet", FBNET)
    store = robust_store(tmp_path / "s.sqlite", space)
    before = _snapshot(store)
    objective("fbnet", FBNET, store).table()
    assert _snapshot(store) == before
    files = {f: _snapshot(f) for f in assets.get("asset:mbv2-cpu-ort").dir.iterdir()}
    copy = assets.resolve_path("asset:mbv2-cpu-ort", "store")
    copy_before = _snapshot(copy)
    opts = {"store": "asset:mbv2-cpu-ort", "device": "cpu", "backend": "onnxruntime"}
    obj = DiffHardwareObjective(parse_options(DiffHardwareObjective.Options, opts, "objective"),
                                space=build_space("mbv2", {}))
    table = obj.table()
    assert table.minimum > 0 and table.matrices
    assert {f: _snapshot(f) for f in files} == files and _snapshot(copy) == copy_before


def test_an_asset_of_another_kind_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"objective\.store: asset nb201-pixel3 is a cost_model, not a store"):
        parse_options(DiffHardwareObjective.Options, {"store": "asset:nb201-pixel3", "device": "d", "backend": "b"},
                      "objective")
