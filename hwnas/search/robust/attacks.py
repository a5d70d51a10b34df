"""White-box adversarial attacks: FGSM and PGD-k under an L-infinity or L2 budget.

Why here, on the training core: robust accuracy is the accuracy :func:`evaluate` reports
on inputs an attack chose, and adversarial training is a :func:`train_pass` whose batches
an attack perturbed first; both must use the same loss (cross-entropy of the logits) and
the same model modes as every other number hwnas reports.

``eps`` (the budget) and ``step`` are in the model's input units — the dataset's
*normalised* values (the digits pixels divided by their std of about 0.4, say), not raw
pixels. ``bounds`` optionally clips the adversarial input to a valid range. PGD keeps,
per example, the restart that fooled the model (or, failing that, the last one), which
is the standard robust-accuracy protocol (Madry et al.). FGSM with ``random_start`` is
the "fast" FGSM of Wong et al. (uniform start in the ball, step 1.25 eps).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError, InputError
from hwnas.options import opt


@dataclass(frozen=True)
class AttackOptions:
    """An attack (YAML: ``attack: {method: pgd, norm: linf, eps: 0.5, steps: 10}``)."""

    method: Literal["fgsm", "pgd"] = opt("pgd", help="fgsm (one signed / normalised gradient step) or pgd "
                                                     "(k projected steps)")
    norm: Literal["linf", "l2"] = opt("linf", help="the budget's norm: linf (per input value) or l2 (per example)")
    eps: float = opt(0.5, min=0.0, help="budget, in the model's (normalised) input units")
    step: float = opt(0.0, min=0.0, help="step size (0 = 2.5 eps / steps for PGD, eps for FGSM, 1.25 eps for "
                                         "FGSM with random start)")
    steps: int = opt(10, min=1, help="PGD steps (k)")
    restarts: int = opt(1, min=1, help="PGD random restarts; an example counts as robust only if all fail")
    random_start: bool = opt(True, help="start from a uniform point in the ball (PGD; fast FGSM)")
    bounds: list[float] = opt([], help="[low, high] the adversarial input is clipped to (empty = no clipping)")

    def __post_init__(self) -> None:
        self.check()  # built in Python too, not only from YAML

    def check(self) -> None:
        if not isinstance(self.eps, (int, float)) or self.eps < 0:
            raise ConfigError(f"eps: an attack budget is >= 0, got {self.eps!r}")
        if self.step < 0:
            raise ConfigError(f"step: must be >= 0, got {self.step!r}")
        if self.bounds and (len(self.bounds) != 2 or not self.bounds[0] < self.bounds[1]):
            raise ConfigError(f"bounds: expected [low, high] with low < high, got {list(self.bounds)}")

    def step_size(self) -> float:
        """The step the options mean (``step``, or the method's default for ``eps``)."""
        if self.step > 0:
            return float(self.step)
        if self.method == "pgd":
            return 2.5 * self.eps / self.steps
        return 1.25 * self.eps if self.random_start else float(self.eps)


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norms, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """``delta`` moved into the ``norm`` ball of radius ``eps`` (per example for L2)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _norms(delta)).clamp(max=1.0)


def _ascent(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction of unit ``norm`` for ``grad``."""
    return grad.sign() if norm == "linf" else grad / _norms(grad)


def _random_start(x: torch.Tensor, eps: float, norm: str, gen: torch.Generator | None) -> torch.Tensor:
    if norm == "linf":
        u = torch.rand(x.shape, generator=gen, device="cpu").to(x.device)
        return (2 * u - 1) * eps
    d = torch.randn(x.shape, generator=gen, device="cpu").to(x.device)
    r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=gen, device="cpu").to(x.device)
    return d / _norms(d) * r * eps


def input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, d loss / d x) of the cross-entropy at ``x``; a model whose output carries no
    gradient with respect to its input is refused in one line."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = model(x)
        if isinstance(out, tuple):
            out = out[0]
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise InputError(f"attack: the model ({type(model).__name__}) gives no gradient with respect to its "
                             "input; FGSM and PGD need a differentiable model")
        loss = F.cross_entropy(out.float(), y)
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        raise InputError(f"attack: the model ({type(model).__name__}) gives no gradient with respect to its "
                         "input; FGSM and PGD need a differentiable model")
    return out.detach(), grad.detach()


def _clip(x_adv: torch.Tensor, o: AttackOptions) -> torch.Tensor:
    return x_adv.clamp(o.bounds[0], o.bounds[1]) if o.bounds else x_adv


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, o: AttackOptions,
         gen: torch.Generator | None = None) -> torch.Tensor:
    """One step of size :meth:`AttackOptions.step_size` up the loss (from a random start
    when asked), projected back into the ball."""
    delta = _random_start(x, o.eps, o.norm, gen) if o.random_start else torch.zeros_like(x)
    _, g = input_grad(model, _clip(x + delta, o), y)
    delta = project(delta + o.step_size() * _ascent(g, o.norm), o.eps, o.norm)
    return _clip(x + delta, o).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, o: AttackOptions,
        gen: torch.Generator | None = None) -> torch.Tensor:
    """PGD-k with restarts: per example, the first restart's input that fools the model,
    else the last restart's."""
    best = x.detach().clone()
    fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(o.restarts):
        delta = _random_start(x, o.eps, o.norm, gen) if o.random_start else torch.zeros_like(x)
        for _ in range(o.steps):
            _, g = input_grad(model, _clip(x + delta, o), y)
            delta = project(delta + o.step_size() * _ascent(g, o.norm), o.eps, o.norm)
        x_adv = _clip(x + delta, o).detach()
        with torch.no_grad():
            out = model(x_adv)
            wrong = (out[0] if isinstance(out, tuple) else out).argmax(1) != y
        take = ~fooled
        best[take] = x_adv[take]
        fooled |= wrong
    return best


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, o: AttackOptions,
           gen: torch.Generator | None = None) -> torch.Tensor:
    """The adversarial inputs the options' method finds for ``(x, y)``."""
    if o.eps == 0:
        return x.detach()
    return pgd(model, x, y, o, gen) if o.method == "pgd" else fgsm(model, x, y, o, gen)


def robust_accuracy(model: nn.Module, batches: Iterable[Any], o: AttackOptions, *, seed: int = 0,
                    runtime: Any = None) -> float:
    """Accuracy of ``model`` (in eval mode) on the attack's inputs for ``batches``; the
    random starts are seeded by ``seed``, the model's modes restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    correct = n = 0
    try:
        for batch in batches:
            x, y = runtime.batch(batch) if runtime is not None else batch
            x_adv = attack(model, x, y, o, gen)
            with torch.no_grad():
                out = model(x_adv)
            correct += int(((out[0] if isinstance(out, tuple) else out).argmax(1) == y).sum())
            n += len(y)
    finally:
        for m, mode in modes:
            m.training = mode
    if n == 0:
        raise ConfigError("attack: the evaluation split is empty")
    return correct / n
