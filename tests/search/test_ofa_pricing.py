"""Specialisation priced by a profiled store: the LUT sum of its primitives calibrated on
its own whole-network rows, a network it measured whole answered as measured, and
``hwnas specialize --cost store=...`` derives subnets within budget under that price."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.cost_models.source import CostSource, SourceRequest, open_source
from hwnas.search.ofa.pricing import StorePricing, TablePricing, arch_pricing, fit_calibration
from hwnas.search.spaces.mbv3 import MBV3Space

from .conftest import fake_store
from .ofa_tiny import SPACE, tiny_run

SETTINGS = {"batch": 1, "threads": 1}


def _space() -> MBV3Space:
    return MBV3Space(**{k: v for k, v in SPACE.items() if k != "type"})


def _store(path: Path, networks: int, noise: float = 0.0) -> tuple[Path, list[Any], np.ndarray]:
    """A fake store of the tiny space whose whole networks take ``0.004 + 0.5 x`` their LUT sum
    (the per-call overhead a network pays once), ``networks`` of them measured."""
    from hwnas.store import Measurement, Store

    sp = _space()
    fake_store(path, sp)
    src = open_source(SourceRequest(store=str(path), device="fake-cpu", backend="torch"))
    rng = np.random.default_rng(5)
    archs = list(dict.fromkeys(sp.canonical(sp.sample(rng)) for _ in range(4 * networks)))[:networks]
    nets = [sp.to_network(a) for a in archs]
    values = 0.004 + 0.5 * src.cost(nets) * (1 + noise * rng.normal(size=len(nets))) if nets else np.zeros(0)
    with Store(path) as st:
        dev = st.find_device("fake-cpu")["id"]
        for n, a in zip(nets, archs):
            st.add_network(n, space="mbv3", arch=sp.to_str(a))
        st.add_measurements(dev, [Measurement("network", n.hash, "torch", SETTINGS, samples_ms=(float(v),))
                                  for n, v in zip(nets, values)])
    return path, archs, values


def test_a_store_prices_by_its_lut_calibrated_on_its_whole_networks(tmp_path: Path) -> None:
    path, archs, values = _store(tmp_path / "s.sqlite", networks=12, noise=0.01)
    sp = _space()
    src = open_source(SourceRequest(store=str(path), device="fake-cpu", backend="torch"))
    pricing = arch_pricing(src, sp)
    assert isinstance(pricing, StorePricing)
    cal = pricing.calibration
    assert cal is not None and cal.rows == 12
    assert cal.coef[1] == pytest.approx(0.5, rel=0.05) and cal.coef[0] == pytest.approx(0.004, abs=0.002)
    assert cal.loo_rel_rmse < 0.05 < cal.raw_rel_rmse  # the raw LUT sum is ~2x off, the calibration is not
    # a network the store measured whole is answered as measured
    assert np.allclose(pricing(archs[:3]), values[:3])
    # one it did not: its LUT sum through the calibration
    rng = np.random.default_rng(99)
    fresh = next(a for a in (sp.canonical(sp.sample(rng)) for _ in range(100)) if a not in set(archs))
    lut = float(src.cost_archs(sp, [fresh])[0])
    n_nodes = len(sp.to_network(fresh).nodes)
    assert pricing([fresh])[0] == pytest.approx(cal.coef[0] + cal.coef[1] * lut + cal.coef[2] * n_nodes)
    assert pricing.info["loo_rel_rmse"] == cal.loo_rel_rmse and "calibrated" in pricing.info["pricing"]


def test_without_whole_network_rows_the_raw_lut_sum_is_used(tmp_path: Path) -> None:
    path, _, _ = _store(tmp_path / "s.sqlite", networks=0)
    sp = _space()
    src = open_source(SourceRequest(store=str(path), device="fake-cpu", backend="torch"))
    pricing = arch_pricing(src, sp)
    probe = [sp.sample(np.random.default_rng(1)) for _ in range(5)]
    assert pricing.calibration is None and "raw" in pricing.info["pricing"]  # type: ignore[union-attr]
    assert np.allclose(pricing(probe), src.cost_archs(sp, probe))
    assert fit_calibration(np.ones(3), np.ones(3), np.ones(3)) is None  # too few rows to fit


def test_specialize_under_a_store_meets_every_budget_at_the_stores_price(tmp_path_factory: pytest.TempPathFactory,
                                                                         tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.search.ofa.predictor import AccuracyPredictor
    from hwnas.search.ofa.sampling import open_supernet_run

    run_dir = tiny_run(tmp_path_factory.getbasetemp())
    path, _, _ = _store(tmp_path / "s.sqlite", networks=10)
    run = open_supernet_run(run_dir)
    rng = np.random.default_rng(0)
    archs = [run.space.sample(rng) for _ in range(40)]
    AccuracyPredictor(run.space, run.space_id(), epochs=50).fit(archs, rng.random(40)).save(tmp_path / "pred")
    pricing = arch_pricing(open_source(SourceRequest(store=str(path), device="fake-cpu", backend="torch")), run.space)
    costs = pricing([run.space.sample(rng) for _ in range(200)])
    budgets = [float(np.percentile(costs, q)) for q in (10, 50)]
    cost = f"store={path},device=fake-cpu,backend=torch"
    capsys.readouterr()
    assert main(["specialize", str(run_dir), "--cost", cost, *[f"--budget-ms={b}" for b in budgets],
                 "--predictor", str(tmp_path / "pred"), "--population", "20", "--generations", "5",
                 "--out", str(tmp_path / "o"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for t, b in zip(out["targets"], budgets):
        arch = run.space.validate(t["arch"])
        assert t["predicted_latency_ms"] <= b
        assert t["predicted_latency_ms"] == pytest.approx(float(pricing([arch])[0]))
        assert "calibrated" in t["pricing"]["pricing"] and t["pricing"]["calibration_rows"] == 10
    # a budget below the cheapest subnet's store price: one line naming that price
    assert main(["specialize", str(run_dir), "--cost", cost, f"--budget-ms={min(costs) * 0.5}",
                 "--predictor", str(tmp_path / "pred"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no subnet meets it; the cheapest achievable is" in err


class _BlockPricer(CostSource):
    """A kernel-predictor-like source: a network costs 0.01 + its blocks' work + 0.002 per
    block; a block alone (a one-node network) pays the 0.01 overhead too."""

    where, device, estimator = "fake-kernel", "fake", "made-up law"

    def __init__(self) -> None:
        self.items_priced = 0

    @staticmethod
    def work(p: Any) -> float:
        return 1e-6 * p.c_in * p.c_out * p.kernel * p.kernel * max(p.expansion, 1.0) * p.h * p.w

    def item_costs(self, items: Any) -> np.ndarray:
        self.items_priced += len(items)
        return np.array([0.01 + self.work(p) + 0.002 for p in items])

    def network_costs(self, networks: Any) -> np.ndarray:
        return np.array([0.01 + sum(self.work(p) + 0.002 for p in n.nodes) for n in networks])


def test_a_kernel_like_source_is_priced_once_per_primitive_and_summed_to_its_whole_price() -> None:
    sp = _space()
    src = _BlockPricer()
    pricing = TablePricing(src, sp, anchors=12)
    cal = pricing.calibration
    assert cal is not None and cal.law == "a + b*lut + c*nodes" and cal.loo_rel_rmse < 1e-6
    rng = np.random.default_rng(8)
    probe = [sp.sample(rng) for _ in range(60)]
    assert np.allclose(pricing(probe), src.cost_archs(sp, probe), rtol=1e-6)  # the whole-network price
    unique = {p.key for a in probe for p in sp.to_network(a).nodes} | set(pricing.table)
    assert src.items_priced == len(pricing.table) <= len(unique)  # each primitive priced once
    before = src.items_priced
    pricing(probe)
    assert src.items_priced == before
