"""The fault_tolerance and adversarial objectives: as reward, as constraint, as Pareto axis."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hwnas.config import parse_config
from hwnas.errors import ConfigError
from hwnas.search.objectives.hardware import WORST
from hwnas.search.rollout import Rollout
from hwnas.testing._search import build
from hwnas.testing.fakes import TINY_DATA, TINY_NB201


def _objective(tmp_path: Path, objective: dict) -> Any:
    cfg = {"search_space": dict(TINY_NB201), "dataset": dict(TINY_DATA), "weights_manager": {"type": "plain"},
           "objective": objective}
    return build(parse_config(cfg, source=tmp_path / "run.yaml", base=tmp_path), controller=False).objective


def test_a_fault_floor_in_a_composite_keeps_the_task_reward_or_ranks_by_shortfall(tmp_path: Path) -> None:
    obj = _objective(tmp_path, {"type": "composite", "objectives": [
        {"type": "classification"},
        {"type": "fault_tolerance", "mode": "constraint", "min_accuracy": 0.6}]})
    ok = {"accuracy": 0.9, "loss": 0.3, "fault_accuracy": 0.7, "fault_accuracy_std": 0.01}
    short = {**ok, "fault_accuracy": 0.5}
    shorter = {**ok, "fault_accuracy": 0.4}
    assert obj.reward(ok) == pytest.approx(0.9) and obj.feasible(ok)
    assert obj.reward(short) == pytest.approx(WORST - 0.1) and not obj.feasible(short)
    assert obj.reward(shorter) < obj.reward(short)
    assert obj.feasible({"accuracy": 0.9})  # not measured yet (a tune evaluator's cheap-perfs check)
    assert obj.directions() == {"accuracy": "max", "fault_accuracy": "max"}


def test_robust_objectives_report_their_accuracy_as_the_reward(tmp_path: Path) -> None:
    ft = _objective(tmp_path, {"type": "fault_tolerance"})
    adv = _objective(tmp_path, {"type": "adversarial", "mode": "report"})
    assert ft.reward({"fault_accuracy": 0.42, "fault_accuracy_std": 0.1}) == pytest.approx(0.42)
    assert adv.reward({"robust_accuracy": 0.17}) == pytest.approx(0.17)
    assert adv.directions() == {"robust_accuracy": "max"} and not adv.is_modifier


def test_fault_accuracy_falls_as_the_rate_rises_on_the_same_candidate(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = {"search_space": dict(TINY_NB201), "dataset": dict(TINY_DATA), "weights_manager": {"type": "plain"},
           "objective": {"type": "classification"}, "evaluator": {"type": "tune", "epochs": 4, "batch_size": 16}}
    parts = build(parse_config(cfg, source=tmp_path / "run.yaml", base=tmp_path), controller=False)
    rollout = Rollout(parts.space.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                           "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
    model = parts.weights_manager.assemble_candidate(rollout)
    parts.evaluator.train(model, seed=0)
    accs = []
    for rate in (0.0, 0.3):
        obj = _objective(tmp_path, {"type": "fault_tolerance", "draws": 2, "batch_size": 32, "faults": [
            {"target": "features", "kind": "stuck_at_1", "rate": rate, "format": "float32"}]})
        accs.append(obj.perfs([rollout], [model])[0]["fault_accuracy"])
    assert accs[0] > 0.5 and accs[1] < accs[0]  # stuck exponent bits: inf / nan feature maps


def test_robust_objectives_refuse_missing_candidates_and_data_in_one_line(tmp_path: Path) -> None:
    obj = _objective(tmp_path, {"type": "adversarial"})
    with pytest.raises(ConfigError) as exc:
        obj.perfs([Rollout((0,) * 6)], None)
    assert str(exc.value).startswith("evaluator: the adversarial objective needs trained candidates")
    obj.dataset = None
    with pytest.raises(ConfigError) as exc:
        obj.perfs([Rollout((0,) * 6)], [nn.Linear(2, 2)])
    assert str(exc.value) == "dataset: the adversarial objective needs a dataset section"
