"""Differentiable controllers: architecture parameters learned by gradient (DARTS).

The controller owns the logits of every architecture-parameter group (the space's,
plus the weights manager's own, e.g. PC-DARTS' edge weights) and their Adam optimiser.
:meth:`DifferentiableController.sample` hands out rollouts whose ``arch_weights`` are
in the logits' autograd graph and whose ``arch`` is the currently derived architecture;
a loss computed through a ``diff_supernet`` candidate (and a differentiable hardware
objective) and back-propagated leaves gradients on the logits, which :meth:`step`
applies. The differentiable trainer drives this through :meth:`update` with an
:class:`ArchStep` - the losses on the current batches and the supernet's weights - so
the second-order DARTS step (which must move the weights and come back) lives here, with
the rest of the controller's mathematics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.archweights import ArchWeights, entropy, mask_tensor, masked_softmax
from hwnas.search.controllers.base import Controller
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.differentiable import ParamGroup, weights_to_jsonable


@dataclass
class ArchStep:
    """What one architecture step needs from the loop.

    ``loss(rollout, split)``: the loss of the rollout's candidate on the current batch of
    ``valid`` (the architecture objective, hardware terms included) or ``train`` (plain
    cross-entropy); ``weights``: the supernet's parameters; ``lr`` / ``weight_decay``:
    the weight optimiser's current values (the second-order step imitates one of its steps).
    """

    loss: Callable[[Rollout, str], torch.Tensor]
    weights: Sequence[nn.Parameter]
    lr: float
    weight_decay: float = 0.0


@dataclass(frozen=True)
class DiffOptions:
    """The architecture optimiser (Adam), shared by every differentiable controller."""

    lr: float = opt(3e-4, gt=0, help="Adam learning rate of the architecture parameters")
    beta1: float = opt(0.5, min=0.0, lt=1.0, help="Adam beta1")
    beta2: float = opt(0.999, min=0.0, lt=1.0, help="Adam beta2")
    weight_decay: float = opt(1e-3, min=0.0, help="weight decay of the architecture parameters")
    init_std: float = opt(1e-3, min=0.0, help="std of the random initial logits (DARTS: 1e-3)")


class DifferentiableController(Controller):
    """Logits per parameter group, Adam on them; subclasses say how logits become weights."""

    #: This controller learns from gradients, so its weights manager must pass them.
    needs_gradients = True

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0, weights_manager: Any = None) -> None:
        super().__init__(options, space=space, seed=seed)
        groups = getattr(weights_manager, "param_groups", None)
        self.groups: list[ParamGroup] = list(groups() if callable(groups) else space.param_groups())
        self.masks = [mask_tensor(g) for g in self.groups]
        gen = torch.Generator().manual_seed(int(seed))
        self.logits = nn.ParameterList(nn.Parameter(options.init_std * torch.randn(g.shape, generator=gen))
                                       for g in self.groups)
        self.optimizer = torch.optim.Adam(self.logits.parameters(), lr=options.lr,
                                          betas=(options.beta1, options.beta2), weight_decay=options.weight_decay)
        self.generator = torch.Generator().manual_seed(int(seed) + 1)
        self.tau = 1.0

    # -- weights ----------------------------------------------------------------------------
    def probabilities(self) -> dict[str, torch.Tensor]:
        """Softmax of every group's logits (in the graph)."""
        return {g.name: masked_softmax(a, m) for g, a, m in zip(self.groups, self.logits, self.masks)}

    def arch_weights(self) -> ArchWeights:
        """The weights a rollout carries (DARTS: the softmax)."""
        return ArchWeights(self.probabilities())

    def eval_weights(self) -> ArchWeights:
        """The weights the supernet is scored with under the current distribution (DARTS:
        the softmax, the mixture it trains)."""
        return ArchWeights(self.probabilities())

    def derive(self) -> Arch:
        """The architecture the current distribution stands for."""
        with torch.no_grad():
            probs = {k: v.numpy().astype(np.float64) for k, v in self.probabilities().items()}
        return self.space.derive(probs)

    def sample(self, n: int = 1) -> list[Rollout]:
        arch = self.derive()
        return [Rollout(arch, arch_weights=self.arch_weights()) for _ in range(n)]

    # -- learning ---------------------------------------------------------------------------
    def step(self, rollouts: Sequence[Rollout]) -> None:
        """Apply the gradients a loss left on the logits (none: nothing to learn)."""
        if any(p.grad is not None for p in self.logits):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def update(self, ctx: ArchStep) -> dict[str, float]:
        """One architecture step (first order: the validation loss at the current weights)."""
        r = self.sample(1)[0]
        self.optimizer.zero_grad(set_to_none=True)
        loss = ctx.loss(r, "valid")
        loss.backward()
        self.step([r])
        return {"arch_loss": float(loss.detach())}

    def on_epoch(self, epoch: int, epochs: int) -> None:
        """Called before every epoch of a differentiable search (temperature schedules)."""

    def entropy(self) -> float:
        """Mean entropy (nats) of the choice groups' distributions: it falls as the search decides."""
        with torch.no_grad():
            ents = [float(entropy(p)) for g, p in zip(self.groups, self.probabilities().values()) if g.kind == "choice"]
        return float(np.mean(ents)) if ents else 0.0

    def alphas_jsonable(self) -> dict[str, Any]:
        """The current distribution (softmax per group) for YAML files."""
        with torch.no_grad():
            return weights_to_jsonable(self.groups, {k: v.numpy() for k, v in self.probabilities().items()})

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state(), "logits": [a.detach().clone() for a in self.logits],
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(), "tau": self.tau}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])
        with torch.no_grad():
            for a, v in zip(self.logits, state["logits"]):
                a.copy_(v)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.tau = float(state["tau"])


@register("controller", "darts")
class DartsController(DifferentiableController):
    """DARTS: softmax over each edge's ops; first-order or second-order (unrolled) steps."""

    @dataclass(frozen=True)
    class Options(DiffOptions):
        order: Literal[1, 2] = opt(1, help="1: gradient at the current weights; 2: through one unrolled weight step")

    def update(self, ctx: ArchStep) -> dict[str, float]:
        if self.options.order == 1:
            return super().update(ctx)
        return self._second_order(ctx)

    def _grads(self, loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        gs = torch.autograd.grad(loss, list(params), allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]

    def _second_order(self, ctx: ArchStep) -> dict[str, float]:
        """grad_a L_val(w', a) - xi * (grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 eps),
        with w' = w - xi * (grad_w L_train(w, a) + wd * w) and w+- = w +- eps * grad_w' L_val
        (Liu et al., 2019, eq. 7-8; the unrolled step leaves out SGD momentum)."""
        w = [p for p in ctx.weights if p.requires_grad]
        alphas = list(self.logits)
        backup = [p.detach().clone() for p in w]
        fixed = Rollout(self.derive(), arch_weights=self.arch_weights().detached())
        g_train = self._grads(ctx.loss(fixed, "train"), w)
        with torch.no_grad():
            for p, g in zip(w, g_train):
                p.sub_(ctx.lr * (g + ctx.weight_decay * p))
        loss = ctx.loss(self.sample(1)[0], "valid")
        grads = self._grads(loss, alphas + w)
        d_alpha, d_w = grads[:len(alphas)], grads[len(alphas):]
        norm = math.sqrt(sum(float((g ** 2).sum()) for g in d_w))
        eps = 0.01 / max(norm, 1e-12)
        implicit = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, g in zip(w, backup, d_w):
                    p.copy_(b + sign * eps * g)
            implicit.append(self._grads(ctx.loss(self.sample(1)[0], "train"), alphas))
        with torch.no_grad():
            for p, b in zip(w, backup):
                p.copy_(b)
        self.optimizer.zero_grad(set_to_none=True)
        for a, d, gp, gn in zip(alphas, d_alpha, *implicit):
            a.grad = d - ctx.lr * (gp - gn) / (2 * eps)
        self.step([])
        return {"arch_loss": float(loss.detach())}
