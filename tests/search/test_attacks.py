"""FGSM and PGD against a linear classifier, where the optimal perturbation is known.

For two classes with logits ``W x + b`` and true class 0, the cross-entropy grows with
the margin's loss, so the worst L-infinity perturbation of radius eps is
``-eps * sign(w0 - w1)`` (the margin falls by ``eps * ||w0 - w1||_1``) and the worst L2
one is ``-eps * (w0 - w1) / ||w0 - w1||_2`` (the margin falls by ``eps * ||w0 - w1||_2``).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hwnas.config import parse_config
from hwnas.errors import ConfigError, InputError
from hwnas.search.robust.attacks import AttackOptions, attack, robust_accuracy


def _linear() -> tuple[nn.Linear, torch.Tensor]:
    torch.manual_seed(0)
    lin = nn.Linear(5, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0, 3.0], [-1.0, 1.0, -0.5, 2.0, -1.0]]))
        lin.bias.copy_(torch.tensor([0.3, -0.3]))
    return lin, lin.weight[0].detach() - lin.weight[1].detach()


def _margin(lin: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = lin(x)
    return out[:, 0] - out[:, 1]


@pytest.mark.parametrize("method,random_start", [("fgsm", False), ("pgd", False), ("pgd", True)])
def test_linf_attacks_find_the_closed_form_optimum(method: str, random_start: bool) -> None:
    lin, w = _linear()
    x = torch.randn(16, 5)
    y = torch.zeros(16, dtype=torch.long)
    eps = 0.1
    o = AttackOptions(method=method, norm="linf", eps=eps, steps=10, random_start=random_start)
    x_adv = attack(lin, x, y, o, torch.Generator().manual_seed(0))
    assert torch.allclose(x_adv, x - eps * w.sign(), atol=1e-6)
    assert torch.allclose(_margin(lin, x_adv), _margin(lin, x) - eps * w.abs().sum(), atol=1e-5)


def test_l2_pgd_finds_the_closed_form_optimum() -> None:
    lin, w = _linear()
    x = torch.randn(16, 5)
    y = torch.zeros(16, dtype=torch.long)
    o = AttackOptions(method="pgd", norm="l2", eps=0.5, steps=10, random_start=False)
    x_adv = attack(lin, x, y, o)
    # (float32: where the margin is ~12 the gradient is ~1e-5 and its direction good to ~1e-4)
    assert torch.allclose(x_adv, x - 0.5 * w / w.norm(), atol=2e-4)
    assert torch.allclose(_margin(lin, x_adv), _margin(lin, x) - 0.5 * w.norm(), atol=1e-3)
    started = attack(lin, x, y, AttackOptions(norm="l2", eps=0.5, steps=20),
                     torch.Generator().manual_seed(1))  # from a random start: within the ball, near the optimum
    assert float((started - x).norm(dim=1).max()) <= 0.5 + 1e-5
    best = _margin(lin, x) - 0.5 * w.norm()  # no point of the ball does better; PGD's fixed travel
    gap = _margin(lin, started) - best  # (2.5 eps) leaves a little of the start's sideways offset
    assert float(gap.min()) >= -1e-4 and float(gap.max()) < 0.1


def test_robust_accuracy_is_the_share_whose_margin_survives_the_budget() -> None:
    lin, w = _linear()
    torch.manual_seed(3)
    x = torch.randn(200, 5)
    y = (_margin(lin, x) < 0).long()  # every example correct before the attack
    eps = 0.2
    survives = (_margin(lin, x).abs() > eps * w.abs().sum()).sum().item() / 200
    o = AttackOptions(method="pgd", norm="linf", eps=eps, steps=10)
    got = robust_accuracy(lin, [(x[:100], y[:100]), (x[100:], y[100:])], o, seed=0)
    assert got == pytest.approx(survives, abs=1e-9)
    assert 0.0 < survives < 1.0
    assert robust_accuracy(lin, [(x, y)], AttackOptions(eps=0.0)) == 1.0


def test_the_input_clips_to_bounds() -> None:
    lin, _ = _linear()
    x = torch.rand(8, 5)
    x_adv = attack(lin, x, torch.zeros(8, dtype=torch.long), AttackOptions(eps=0.5, bounds=[0.0, 1.0]))
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


class _NoGrad(nn.Module):
    """A classifier that scores without autograd (a lookup, a quantised engine...)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([x.sum(1), -x.sum(1)], 1)


def test_an_attack_on_a_model_without_gradients_is_one_line() -> None:
    x = torch.randn(4, 5)
    with pytest.raises(InputError) as exc:
        attack(_NoGrad(), x, torch.zeros(4, dtype=torch.long), AttackOptions(eps=0.1))
    msg = str(exc.value)
    assert msg.startswith("attack: the model (_NoGrad) gives no gradient") and "\n" not in msg


def test_a_negative_eps_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        AttackOptions(eps=-0.1)
    assert str(exc.value).startswith("eps: ") and "\n" not in str(exc.value)
    cfg = {"search_space": {"type": "toy"}, "objective": {"type": "adversarial", "attack": {"eps": -1}}}
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg)
    msg = str(exc.value)
    assert msg.startswith("objective.attack.eps:") and "-1" in msg and "\n" not in msg
