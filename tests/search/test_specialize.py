"""``hwnas specialize``: every derived subnet meets its budget under its device's cost
source, the evolution finds the best subnet a brute force finds, the miniature OFA flow
(supernet -> specialise -> fine-tune from the supernet -> test --profile) runs, and bad
input is one line each."""
from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from hwnas.cli import main
from hwnas.cost_models.source import SourceRequest, open_source
from hwnas.search.archfile import read_arch_file
from hwnas.search.ofa.evolve import CostCache, EvolutionOptions, evolve
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.testing.fakes import fake_cost_model

from .ofa_tiny import SPACE, tiny_run


def _space(**over: Any) -> MBV3Space:
    return MBV3Space(**{**{k: v for k, v in SPACE.items() if k != "type"}, **over})


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def ofa(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny run, a fake latency model of its space, and budgets between its cheapest
    and its median subnet."""
    base = tmp_path_factory.getbasetemp()
    run = tiny_run(base)
    model, median = fake_cost_model(base / "ofa-fake-model", _space(), samples=40)
    src = open_source(SourceRequest(model=str(model)))
    sp = _space()
    smallest = tuple(d.choices.index(min(d.choices)) for d in sp.decisions)
    low = src.cost(sp.to_network(sp.validate(smallest)))
    return {"run": run, "model": model, "src": src, "cheapest": low, "budgets": [low * 1.15, (low + median) / 2]}


def test_evolution_finds_the_best_subnet_a_brute_force_finds() -> None:
    sp = _space(depths=[1], resolutions=[8])  # 4^5 = 1024 subnets: brute force is exact
    rng = np.random.default_rng(0)
    w = rng.normal(size=(len(sp.decisions), 2))
    all_archs = [sp.validate(a) for a in itertools.product(*[range(d.size) for d in sp.decisions])]

    def predict(archs: list) -> np.ndarray:
        return np.array([sum(w[i, c] for i, c in enumerate(a)) + 0.3 * a[2] * a[5] for a in archs])

    def price(archs: list) -> np.ndarray:
        return np.array([sum(e * k for st in sp.stage_choices(a) for e, k in st) for a in archs], dtype=float)

    budget = float(np.median(price(all_archs)))
    costs, fits = price(all_archs), predict(all_archs)
    best = float(fits[costs <= budget].max())
    found = evolve(sp, predict, CostCache(sp, price), budget, EvolutionOptions(population=40, generations=25),
                   sp.validate([0] * len(sp.decisions)))
    assert found.cost <= budget and found.accuracy == pytest.approx(best)
    assert found.priced < len(all_archs)  # it did not price the whole space


@pytest.mark.timeout(180)
def test_the_miniature_ofa_flow(ofa: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Supernet (the shared tiny run) -> specialise for two budgets -> fine-tune the
    tighter one from the supernet's weights -> test it with a measured latency."""
    run, budgets = ofa["run"], ofa["budgets"]
    out = _json(["specialize", str(run), "--cost", str(ofa["model"]), *[f"--budget-ms={b}" for b in budgets],
                 "--samples", "12", "--population", "30", "--generations", "10", "--out", str(tmp_path / "sp")],
                capsys)
    sp = _space()
    for i, (t, b) in enumerate(zip(out["targets"], budgets)):
        assert t["budget_ms"] == b and t["predicted_latency_ms"] <= b and t["seconds"] < 10
        arch = read_arch_file(out["arch_file"], rank=i).resolve(sp)
        assert ofa["src"].cost(sp.to_network(arch)) == pytest.approx(t["predicted_latency_ms"])
    assert (tmp_path / "sp" / "accuracy_vs_budget.png").stat().st_size > 0
    assert out["predictor"]["metrics"]["mlp"]["n"] == 3

    arch = read_arch_file(out["arch_file"], rank=0).resolve(sp)
    config = str(run / "config.yaml")  # the supernet's own config: the subnet trains at its own resolution
    train = _json(["train", config, "--arch", out["arch_file"], "--rank", "0",
                   "--from-supernet", str(run), "--out", str(tmp_path / "ft")], capsys)
    assert train["finished"] and train["arch"] == sp.to_str(arch)
    res = _json(["test", config, "--arch", out["arch_file"], "--checkpoint",
                 str(tmp_path / "ft" / "checkpoint.pt"), "--profile", "--cost-model", str(ofa["model"])], capsys)
    assert res["test_accuracy"] > 0.2 and res["latency_ms"] > 0  # 10 classes: chance is 0.1
    assert res["predicted_latency_ms"] == pytest.approx(out["targets"][0]["predicted_latency_ms"])


def test_a_targets_file_specialises_for_every_device_in_one_call(ofa: dict[str, Any], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.search.ofa.predictor import AccuracyPredictor
    from hwnas.search.ofa.sampling import open_supernet_run

    run = open_supernet_run(ofa["run"])
    rng = np.random.default_rng(0)
    archs = [run.space.sample(rng) for _ in range(40)]
    AccuracyPredictor(run.space, run.space_id(), epochs=50).fit(archs, rng.random(40)).save(tmp_path / "pred")
    slow, _ = fake_cost_model(tmp_path / "slow", _space(), samples=40)  # the same law: a second "device"
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({"targets": [
        {"device": "board-a", "cost": str(ofa["model"]), "budget_ms": ofa["budgets"]},
        {"device": "board-b", "cost": {"model": "slow"}, "budget_ms": ofa["budgets"][1]}]}))  # relative to the file
    out = _json(["specialize", str(ofa["run"]), "--targets", str(targets), "--predictor", str(tmp_path / "pred"),
                 "--population", "20", "--generations", "5", "--out", str(tmp_path / "o")], capsys)
    assert [t["device"] for t in out["targets"]] == ["board-a", "board-a", "board-b"]
    assert all(t["predicted_latency_ms"] <= t["budget_ms"] for t in out["targets"])
    assert out["predictor"]["loaded"] and (tmp_path / "o" / "accuracy_vs_budget.png").is_file()
    assert len(yaml.safe_load((tmp_path / "o" / "specialized.yaml").read_text())) == 3


def test_a_subnet_with_its_own_resolution_is_trained_at_it(ofa: dict[str, Any]) -> None:
    from hwnas.search.build import load_run_config
    from hwnas.search.final import at_arch_resolution

    cfg = load_run_config(ofa["run"] / "config.yaml")  # digits at 10x10, subnets at 10 or 8
    sp = _space()
    assert at_arch_resolution(cfg, sp, sp.from_str("r8|d1:e3k3|d1:e3k3|d1:e3k3|d1:e3k3|d1:e3k3"), None) == \
        {"resolution": 8}
    assert at_arch_resolution(cfg, sp, sp.from_str("r10|d1:e3k3|d1:e3k3|d1:e3k3|d1:e3k3|d1:e3k3"), None) is None
    assert at_arch_resolution(cfg, sp, sp.from_str("r8|d1:e3k3|d1:e3k3|d1:e3k3|d1:e3k3|d1:e3k3"),
                              {"resolution": 10}) == {"resolution": 10}  # an explicit one wins


def test_a_run_that_is_not_a_supernet_run_is_one_line(ofa: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["specialize", str(tmp_path), "--cost", str(ofa["model"]), "--budget-ms", "1"], capsys)
    assert "not a search run directory" in err
    fake = tmp_path / "plain-run"
    shutil.copytree(ofa["run"], fake)
    cfg = yaml.safe_load((fake / "config.yaml").read_text())
    cfg["weights_manager"] = {"type": "plain"}
    (fake / "config.yaml").write_text(yaml.safe_dump(cfg))
    err = _error(["specialize", str(fake), "--cost", str(ofa["model"]), "--budget-ms", "1"], capsys)
    assert "not a supernet run" in err and "'plain'" in err


def test_a_cost_source_of_another_space_is_one_line(ofa: dict[str, Any], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.search.spaces.mbv2 import MBV2Space

    other, _ = fake_cost_model(tmp_path / "mbv2-model", MBV2Space(resolution=10, width=0.25, in_channels=1,
                                                                   num_classes=10))
    err = _error(["specialize", str(ofa["run"]), "--cost", str(other), "--budget-ms", "1"], capsys)
    assert "does not price this run's mbv3 networks" in err and str(other) in err
    wider, _ = fake_cost_model(tmp_path / "wide-model", _space(width=0.5))  # mbv3, other widths
    err = _error(["specialize", str(ofa["run"]), "--cost", str(wider), "--budget-ms", "1"], capsys)
    assert "does not price this run's mbv3 networks" in err


def test_a_budget_no_subnet_meets_names_the_cheapest_cost(ofa: dict[str, Any], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({"targets": [{"device": "fake", "cost": {"model": str(ofa["model"])},
                                                    "budget_ms": [ofa["cheapest"] * 0.5]}]}))
    # refused before any subnet is scored for the predictor
    err = _error(["specialize", str(ofa["run"]), "--targets", str(targets), "--samples", "8",
                  "--out", str(tmp_path / "o")], capsys)
    assert "no subnet meets it; the cheapest achievable is" in err and "targets[0]" in err
    assert f"{ofa['cheapest']:.4g} ms" in err


@pytest.mark.parametrize("entry,needle", [
    ({"cost": "m", "budget_ms": -1}, "targets[0].budget_ms: a budget is a finite number of ms > 0, got -1"),
    ({"cost": "m"}, "targets[0]: needs cost and budget_ms"),
    ({"cost": "m", "budget_ms": 1, "devce": "x"}, "unknown key(s) devce"),
    ({"cost": "store=s.sqlite,device", "budget_ms": 1}, "expected key=value pairs"),
])
def test_a_bad_targets_file_is_one_line(ofa: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        entry: dict[str, Any], needle: str) -> None:
    targets = tmp_path / "t.yaml"
    targets.write_text(yaml.safe_dump({"targets": [entry]}))
    err = _error(["specialize", str(ofa["run"]), "--targets", str(targets)], capsys)
    assert str(targets) in err and needle in err
