"""The mepa evaluator: supernet training moves the shared weights, scoring fills
accuracies in [0, 1] with BN recalibrated per subnet and leaves the supernet as it was."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError
from hwnas.search.datasets.builtin import DigitsDataset
from hwnas.search.evaluators.mepa import MepaEvaluator
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv2 import MBV2Space
from hwnas.search.spaces.nb201 import NB201Space
from hwnas.search.weights.supernet_mbv2 import MBV2Supernet
from hwnas.search.weights.supernet_nb201 import NB201Supernet


class FakeLatency(Objective):
    """Latency = number of non-'none' edges; reward = accuracy - 0.01 * latency."""

    perf_names = ("latency_ms",)

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        return [{"latency_ms": float(sum(1 for a in r.arch if a != 0))} for r in rollouts]

    def reward(self, perfs: Mapping[str, float]) -> float:
        return perfs["accuracy"] - 0.01 * perfs["latency_ms"]


@pytest.fixture(scope="module")
def digits() -> DigitsDataset:
    return DigitsDataset(DigitsDataset.Options(resolution=8, channels=1), seed=0)


def _nb201(digits: DigitsDataset, **opts: Any) -> MepaEvaluator:
    space = NB201Space(channels=4, cells_per_stage=1, resolution=8, in_channels=1)
    wm = NB201Supernet(space=space, seed=0)
    return MepaEvaluator(MepaEvaluator.Options(**opts), space=space, weights_manager=wm, dataset=digits,
                         objective=FakeLatency(), seed=0)


def test_update_then_evaluate_fills_perfs_and_reward(digits: DigitsDataset) -> None:
    ev = _nb201(digits, steps=40, batch_size=32)
    w0 = [p.detach().clone() for p in ev.weights_manager.module.parameters()]
    stats = ev.update_evaluator()
    assert stats["supernet_loss"] > 0 and 0 <= stats["supernet_accuracy"] <= 1
    assert ev.steps_done == 40
    assert any(not torch.equal(a, b) for a, b in zip(w0, ev.weights_manager.module.parameters()))
    rng = np.random.default_rng(3)
    rollouts = [Rollout(ev.space.sample(rng)) for _ in range(5)]
    buffers = {k: v.clone() for k, v in ev.weights_manager.module.named_buffers()}
    ev.evaluate(rollouts)
    for r in rollouts:
        assert 0.0 <= r.perfs["accuracy"] <= 1.0
        assert np.isfinite(r.perfs["loss"])
        assert r.perfs["latency_ms"] == sum(1 for a in r.arch if a != 0)
        assert r.reward == pytest.approx(r.perfs["accuracy"] - 0.01 * r.perfs["latency_ms"])
    # Evaluation recalibrates BN on copies: the supernet's own statistics are untouched.
    for k, v in ev.weights_manager.module.named_buffers():
        assert torch.equal(v, buffers[k]), k
    # 40 steps on digits already separate subnets that see the input from the all-'none'
    # cell, whose output ignores the image (chance level).
    blind = Rollout((0,) * 6)
    ev.evaluate([blind])
    assert blind.perfs["accuracy"] < 0.2 < max(r.perfs["accuracy"] for r in rollouts)
    # Scoring is deterministic: the same subnet gets the same score twice.
    again = Rollout(rollouts[0].arch)
    ev.evaluate([again])
    assert again.perfs["accuracy"] == rollouts[0].perfs["accuracy"]


def test_sandwich_rule_on_mbv2_and_state_round_trip(digits: DigitsDataset) -> None:
    space = MBV2Space(resolution=8, width=0.25, num_classes=10, in_channels=1, depths=[1, 2], expansions=[3, 6],
                      kernels=[3, 5])
    wm = MBV2Supernet(space=space, seed=0)
    ev = MepaEvaluator(MepaEvaluator.Options(steps=3, batch_size=16, sampling="sandwich", eval_batches=1,
                                             eval_batch_size=32, calib_batches=1),
                       space=space, weights_manager=wm, dataset=digits, seed=0)
    assert ev._train_archs(None)[:2] == [wm.extreme_arch("max"), wm.extreme_arch("min")]
    ev.update_evaluator()
    r = Rollout(space.sample(np.random.default_rng(0)))
    ev.evaluate([r])
    assert 0.0 <= r.perfs["accuracy"] <= 1.0 and r.reward == r.perfs["accuracy"]
    state = ev.state_dict()
    other = MepaEvaluator(ev.options, space=space, weights_manager=wm, dataset=digits, seed=5)
    other.load_state_dict(state)
    assert other.steps_done == 3 and other.rng.bit_generator.state == ev.rng.bit_generator.state


def test_mepa_needs_a_supernet(digits: DigitsDataset) -> None:
    with pytest.raises(ConfigError, match="supernet"):
        MepaEvaluator(space=NB201Space(), weights_manager=object(), dataset=digits)
