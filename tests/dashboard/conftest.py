"""Fixtures of the dashboard tests: real search runs (NAS-Bench-201 accuracy and latency
tables, seconds on one core), a shipped store and cost models fitted on it."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parents[1] / "data"
ACC = {"type": "table", "table": str(DATA / "nb201_accuracy.csv.gz"), "perfs": {"accuracy": "cifar10_test_acc"},
       "scale": {"accuracy": 0.01}}


def nb201_config(column: str, steps: int = 8, every: int = 2) -> dict[str, Any]:
    """An nb201 search priced by one device column of the HW-NAS-Bench latency slice."""
    return {"seed": 0, "search_space": {"type": "nb201"},
            "controller": {"type": "pareto", "population": 10}, "evaluator": ACC,
            "objective": {"type": "composite", "objectives": [
                {"type": "classification"},
                {"type": "hardware", "table": str(DATA / "nb201_latency_slice.csv.gz"), "column": column}]},
            "trainer": {"type": "simple", "steps": steps, "rollouts_per_step": 5, "checkpoint_every": every,
                        "reuse": True}}


def brute_front(path: Path) -> set[tuple[float, float]]:
    """The (latency, accuracy) Pareto front of a rollouts.csv by pairwise dominance: the
    slow, obviously right definition the dashboard's O(n log n) front must agree with."""
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["feasible"] == "1"]
    pts = {(float(r["latency_ms"]), float(r["accuracy"])) for r in rows}
    pts = {p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])}
    return {p for p in pts if not any(q != p and q[0] <= p[0] and q[1] >= p[1] for q in pts)}


@pytest.fixture(scope="package")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/nb201-gold and runs/nb201-silver: finished searches of two devices."""
    from hwnas.search.api import run_search

    root = tmp_path_factory.mktemp("dash") / "runs"
    root.mkdir()
    for name, col in (("nb201-gold", "gold_6226_ms"), ("nb201-silver", "silver_4114_ms")):
        cfg = root.parent / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(nb201_config(col)))
        run_search(cfg, run_dir=root / name)
    return root


@pytest.fixture(scope="package")
def shipped_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A private SQLite copy of the shipped mbv2-digits CPU store, with a linear1 cost model
    fitted on it as MODELS/cm (for the cost-model pages); returns (store, MODELS)."""
    from hwnas.assets import resolve_path
    from hwnas.cost_models import api
    from hwnas.cost_models.data import DataRequest

    store = resolve_path("asset:mbv2-digits-cpu-ort", "store")
    out = tmp_path_factory.mktemp("models") / "cm"
    data = api.load_data(DataRequest(store=store, device="cpu", backend="onnxruntime"))
    api.fit_cost(data, "linear1", out=out)
    return Path(store), out.parent
