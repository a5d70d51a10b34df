"""The cost-source factory: what the user gave decides the source, the source says what
it holds, and a consumer asking for another metric is refused in one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.cost_models.source import SourceRequest, open_source, target_of
from hwnas.cost_models.source_models import AssetSource, KernelSource, ModelSource
from hwnas.cost_models.source_tables import StoreSource, TableSource
from hwnas.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NB201_TABLE = ROOT / "tests" / "data" / "nb201_latency_slice.csv.gz"


@pytest.mark.parametrize("name,unit,want", [("latency", None, "latency"), ("gold_6226_ms", None, "latency"),
                                            ("fpga_mJ", None, "energy"), ("x", "mJ", "energy"), ("x", "", None)])
def test_target_of_names_and_units(name: str, unit: str | None, want: str | None) -> None:
    assert target_of(name, unit) == want


def test_factory_builds_the_source_the_user_named(tmp_path: Path) -> None:
    table = open_source(SourceRequest(table=NB201_TABLE, column="gold_6226_ms"))
    assert isinstance(table, TableSource) and (table.target, table.unit) == ("latency", "ms")
    asset = open_source(SourceRequest(model="asset:nb201-pixel3"))
    assert isinstance(asset, AssetSource) and isinstance(asset.inner, ModelSource)
    assert not isinstance(asset.inner, KernelSource)
    assert (asset.target, asset.unit) == ("latency", "ms") and "Pixel 3" in asset.device
    store = open_source(SourceRequest(store="asset:zcu102-dpu-blocks", device="zcu102-dpu-b4096", backend="awnas",
                                      metric="energy"))
    assert isinstance(store, AssetSource) and isinstance(store.inner, StoreSource)
    assert (store.target, store.unit, store.inner.column) == ("energy", "mJ", "energy_mj")


@pytest.mark.parametrize("req,message", [
    (SourceRequest(table=NB201_TABLE, column="gold_6226_ms", metric="energy"),
     r"objective\.metric: .*nb201_latency_slice\.csv\.gz holds latency \(ms\) of gold_6226_ms .*not energy"),
    (SourceRequest(model="asset:nb201-pixel3", metric="energy"),
     r"objective\.metric: asset:nb201-pixel3 holds latency \(ms\) of Google Pixel 3 .*not energy"),
    (SourceRequest(table="asset:nb201-pixel3", column="c"), r"objective\.table: asset nb201-pixel3 is a cost_model"),
    (SourceRequest(store="missing.sqlite", device="d", backend="b"), r"objective\.store: cost store not found"),
    (SourceRequest(), r"objective\.model: give exactly one cost source"),
])
def test_refusals_are_one_line_and_name_the_source(req: SourceRequest, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_source(req)
    assert "\n" not in str(info.value)


def test_store_estimator_is_chosen_once(tmp_path: Path) -> None:
    """One store, two estimators: the robust latency_ms (default) and the median differ."""
    from hwnas.primitives import Primitive
    from hwnas.store import Device, Measurement, Store

    p = Primitive("conv", 3, 8, 8, 8, kernel=3)
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        dev = st.add_device(Device(name="cpu", kind="cpu", cpu_model="x", cores=1, threads=1))
        st.add_primitive(p)
        st.add_measurements(dev, [Measurement("primitive", p.key, "torch", {"batch": 1}, samples_ms=(1.0, 2.0, 3.0),
                                              estimate_ms=2.5)])
    robust = open_source(SourceRequest(store=path, device="cpu", backend="torch"))
    median = open_source(SourceRequest(store=path, device="cpu", backend="torch", estimator="median_ms"))
    assert robust.cost(p) == 2.5 and median.cost(p) == 2.0
    assert np.array_equal(robust.cost([p, p]), [2.5, 2.5])
    with pytest.raises(ConfigError, match=r"objective\.estimator: a store prices energy with one of energy_mj"):
        open_source(SourceRequest(store=path, device="cpu", backend="torch", metric="energy", estimator="median_ms"))
