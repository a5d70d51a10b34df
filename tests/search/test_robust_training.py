"""Robust training on the training core: fault-aware steps and adversarial batches."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from hwnas.config import parse_config
from hwnas.errors import ConfigError
from hwnas.run_section import OptimOptions
from hwnas.search.robust.attacks import AttackOptions, attack
from hwnas.search.robust.faults import FaultOptions, inject
from hwnas.search.robust.train import RobustPerturb, RobustTrainOptions, make_perturb
from hwnas.search.training import make_optimizer, train_pass
from hwnas.testing.fakes import TINY_DATA, TINY_NB201

SGD = OptimOptions(lr=0.5, momentum=0.0, weight_decay=0.0)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(32, 6)
    return x, (x[:, 0] > 0).long()


def test_a_fault_aware_step_takes_the_gradient_at_faulty_weights_and_updates_the_clean_ones() -> None:
    x, y = _data()
    torch.manual_seed(1)
    net = nn.Linear(6, 2)
    clean = copy.deepcopy(net)
    o = RobustTrainOptions(method="faults", faults=[{"rate": 0.05, "format": "int8"}], seed=3)
    perturb = make_perturb(o, seed=10)
    assert isinstance(perturb, RobustPerturb)
    train_pass(net, [(x, y)], make_optimizer(net.parameters(), SGD), SGD, perturb=perturb)
    faulty = copy.deepcopy(clean)  # the same draw by hand: step 0 of seed 10 + 3
    with inject(faulty, [FaultOptions(rate=0.05, format="int8")], (13 * 7919) & 0x7FFFFFFF):
        assert not torch.equal(faulty.weight, clean.weight)
        nn.functional.cross_entropy(faulty(x), y).backward()
    assert torch.allclose(net.weight, clean.weight - 0.5 * faulty.weight.grad, atol=1e-6)
    assert torch.allclose(net.bias, clean.bias - 0.5 * faulty.bias.grad, atol=1e-6)


def test_an_adversarial_step_trains_on_the_attack_inputs() -> None:
    x, y = _data()
    torch.manual_seed(1)
    net = nn.Linear(6, 2)
    before = copy.deepcopy(net)
    o = RobustTrainOptions(method="pgd", attack=AttackOptions(eps=0.3, steps=5, random_start=False))
    stats = train_pass(net, [(x, y)], make_optimizer(net.parameters(), SGD), SGD, perturb=make_perturb(o))
    x_adv = attack(before, x, y, o.attack_options())
    assert stats.losses[0] == pytest.approx(float(nn.functional.cross_entropy(before(x_adv), y).detach()), rel=1e-5)
    assert stats.losses[0] > float(nn.functional.cross_entropy(before(x), y).detach())


def test_fraction_spreads_the_perturbed_steps_evenly() -> None:
    p = RobustPerturb(RobustTrainOptions(method="fgsm", fraction=0.5), seed=0)
    seen = []
    for _ in range(6):
        seen.append(p._active())
        p.step += 1
    assert seen == [False, True] * 3
    assert make_perturb(RobustTrainOptions()) is None


@pytest.mark.parametrize("robust,msg", [
    ({"method": "faults"}, "evaluator.robust.faults: method faults needs at least one fault model"),
    ({"method": "pgd", "faults": [{"rate": 0.1}]}, "evaluator.robust.faults: fault models are used by method faults"),
    ({"method": "faults", "faults": [{"rate": 3}]}, "evaluator.robust.faults[0].rate: must be <= 1"),
    ({"method": "pgd", "attack": {"eps": -0.5}}, "evaluator.robust.attack.eps: must be >= 0")])
def test_bad_robust_training_options_are_one_line(robust: dict, msg: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"search_space": {"type": "toy"}, "evaluator": {"type": "tune", "robust": robust}})
    assert str(exc.value).startswith(msg) and "\n" not in str(exc.value)


def test_tune_trains_with_fast_fgsm_when_asked(tmp_path: Path) -> None:
    from hwnas.search.build import build_components, load_run_config
    from hwnas.search.rollout import Rollout

    losses = {}
    for name, robust in (("plain", {}), ("fgsm", {"method": "fgsm", "attack": {"eps": 1.0}})):
        cfg = {"search_space": dict(TINY_NB201), "dataset": dict(TINY_DATA), "weights_manager": {"type": "plain"},
               "evaluator": {"type": "tune", "epochs": 2, "batch_size": 16, "bn_recalibrate": 0, "robust": robust},
               "objective": {"type": "classification"}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        comps = build_components(load_run_config(path), controller=False, device="cpu")
        r = Rollout(comps.space.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+"
                                         "|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|"))
        torch.manual_seed(0)
        losses[name] = comps.evaluator.train(comps.weights_manager.assemble_candidate(r), seed=0)["train_loss"]
    assert losses["fgsm"] > losses["plain"]  # the same network and batches, but adversarial inputs
