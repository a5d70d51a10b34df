"""TensorBoard event files of search runs, read back with TensorBoard's own reader."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from hwnas.search.api import run_search  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
NB201 = {"seed": 0, "search_space": {"type": "nb201"}, "controller": {"type": "pareto", "population": 10},
         "evaluator": {"type": "table", "table": str(DATA / "nb201_accuracy.csv.gz"),
                       "perfs": {"accuracy": "cifar10_test_acc"}, "scale": {"accuracy": 0.01}},
         "objective": {"type": "composite", "objectives": [
             {"type": "classification"},
             {"type": "hardware", "table": str(DATA / "nb201_latency_slice.csv.gz"), "column": "gold_6226_ms"}]},
         "trainer": {"type": "simple", "steps": 6, "rollouts_per_step": 5, "checkpoint_every": 2, "reuse": True}}


def events(path: Path) -> EventAccumulator:
    ea = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def search(tmp_path: Path, name: str, cfg: dict[str, Any], **kw: Any) -> dict[str, Any]:
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return run_search(f, run_dir=tmp_path / name, **kw)


def test_search_writes_scalars_front_and_hparams(tmp_path: Path) -> None:
    import csv

    out = search(tmp_path, "run", NB201)
    ea = events(tmp_path / "run" / "tensorboard")
    with (tmp_path / "run" / "rollouts.csv").open() as f:
        rows = list(csv.DictReader(f))
    for tag, col in (("step/accuracy", "accuracy"), ("step/latency_ms", "latency_ms"), ("step/reward", "reward")):
        got = {e.step: e.value for e in ea.Scalars(tag)}
        assert sorted(got) == list(range(1, 7))
        for step, v in got.items():  # the mean over the step's 5 rollouts, as the CSV holds them
            vals = [float(r[col]) for r in rows if int(r["step"]) == step - 1]
            assert v == pytest.approx(sum(vals) / len(vals), rel=1e-5)
    best = [e.value for e in ea.Scalars("search/best_reward")]
    assert best == sorted(best) and best[-1] == pytest.approx(out["best"]["reward"], rel=1e-6)
    assert ea.Tags()["images"] == ["search/pareto_front"]
    assert any((tmp_path / "run" / "tensorboard" / "hparams").iterdir())


def test_switched_off_and_resumed_without_doubles(tmp_path: Path) -> None:
    search(tmp_path, "off", {**NB201, "run": {"tensorboard": False}})
    assert (tmp_path / "off" / "rollouts.csv").exists() and not (tmp_path / "off" / "tensorboard").exists()
    from hwnas.search.api import SearchOverrides

    search(tmp_path, "two", NB201, overrides=SearchOverrides(steps=4))
    search(tmp_path, "two", NB201)  # resumed at step 4, runs to 6
    steps = [e.step for e in events(tmp_path / "two" / "tensorboard").Scalars("step/accuracy")]
    assert sorted(steps) == list(range(1, 7))
    search(tmp_path, "two", NB201, overrides=SearchOverrides(steps=2), restart=True)  # afresh: older events hidden
    steps = [e.step for e in events(tmp_path / "two" / "tensorboard").Scalars("step/accuracy")]
    assert sorted(steps) == [1, 2]


@pytest.mark.slow
def test_differentiable_search_logs_alphas_entropy_and_lr(tmp_path: Path) -> None:
    from .test_diff_flow import MINI

    cfg = {**MINI, "trainer": {**MINI["trainer"], "epochs": 2}}
    out = search(tmp_path, "darts", cfg)
    ea = events(tmp_path / "darts" / "tensorboard")
    tags = ea.Tags()["scalars"]
    ent = [e.value for e in ea.Scalars("epoch/entropy")]
    assert ent == pytest.approx(out["entropy"], rel=1e-5)
    lr = [e.value for e in ea.Scalars("epoch/lr")]
    assert len(lr) == 2 and lr[1] < lr[0] <= 0.05  # cosine decay
    alphas = [t for t in tags if t.startswith("alpha/")]
    assert alphas and all(0 <= ea.Scalars(t)[-1].value <= 1 for t in alphas)
    group = alphas[0].rsplit("/", 1)[0]  # one edge's alphas sum to 1
    total = sum(ea.Scalars(t)[-1].value for t in alphas if t.rsplit("/", 1)[0] == group)
    assert total == pytest.approx(1.0, abs=1e-5) and not math.isnan(ea.Scalars("search/entropy")[-1].value)
    from hwnas.cli import main  # final training of the derived architecture logs loss, lr and accuracy

    cfg_file = tmp_path / "darts.yaml"
    assert main(["derive", str(tmp_path / "darts")]) == 0
    assert main(["train", str(cfg_file), "--arch", str(tmp_path / "darts" / "best.yaml"), "--out",
                 str(tmp_path / "final")]) == 0
    ft = events(tmp_path / "final" / "tensorboard")
    assert {"train/train_loss", "train/lr", "train/valid_accuracy"} <= set(ft.Tags()["scalars"])
    lrs = [e.value for e in ft.Scalars("train/lr")]
    assert len(lrs) == MINI["run"]["train"]["epochs"] and lrs[-1] < lrs[0]


@pytest.mark.slow
def test_async_search_logs_each_finished_rollout(ray_local: Any, tmp_path: Path) -> None:
    cfg = {**NB201, "trainer": {"type": "async", "steps": 6, "workers": 2, "checkpoint_every": 2}}
    out = search(tmp_path, "async", cfg)
    ea = events(tmp_path / "async" / "tensorboard")
    assert sorted(e.step for e in ea.Scalars("step/accuracy")) == list(range(1, 7))
    assert ea.Scalars("search/best_reward")[-1].value == pytest.approx(out["best"]["reward"], rel=1e-6)
    assert ea.Tags()["images"] == ["search/pareto_front"]
