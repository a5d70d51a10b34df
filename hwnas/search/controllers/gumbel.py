"""Gumbel-softmax controllers: GDAS, SNAS and FBNet.

All three sample every row of every choice group with Gumbel noise at a temperature
that anneals over the epochs; they differ in what the sample is and how the
temperature falls:

* ``gdas`` (Dong & Yang, 2019): a *hard* one-hot sample with a straight-through
  gradient, so the supernet runs one op per edge; temperature linear from 10 to 0.1;
* ``snas`` (Xie et al., 2019): the soft sample (every op runs, weighted by it);
  temperature annealed exponentially from 1;
* ``fbnet`` (Wu et al., 2019): the soft sample over each layer's blocks of a block-wise
  space, temperature 5 decayed by exp(-0.045) per epoch, Adam at 0.01.

Edge-weight groups (PC-DARTS' edge normalisation) are never sampled: they stay a softmax.
The noise comes from the controller's own generator, saved in its state, so a resumed
search draws what an uninterrupted one would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.archweights import ArchWeights, gumbel_softmax, masked_softmax
from hwnas.search.controllers.differentiable import DifferentiableController, DiffOptions
from hwnas.search.spaces.base import SearchSpace


@dataclass(frozen=True)
class GumbelOptions(DiffOptions):
    tau_max: float = opt(1.0, gt=0, help="temperature at the first epoch")
    tau_min: float = opt(0.03, gt=0, help="temperature floor (and the last epoch's value for a linear schedule)")
    schedule: Literal["linear", "exponential"] = opt(
        "exponential", help="linear from tau_max to tau_min over the epochs, or tau_max * decay ** epoch")
    decay: float = opt(0.97, gt=0, max=1.0, help="per-epoch factor of the exponential schedule")

    def check(self) -> None:
        if self.tau_min > self.tau_max:
            raise ConfigError(f"tau_min: must be <= tau_max ({self.tau_max}), got {self.tau_min}")


class GumbelController(DifferentiableController):
    """Gumbel-softmax samples of the choice groups at an annealed temperature."""

    #: One-hot samples with straight-through gradients (GDAS) instead of soft ones.
    hard: bool = False

    def __init__(self, options: GumbelOptions, *, space: SearchSpace, seed: int = 0,
                 weights_manager: Any = None) -> None:
        super().__init__(options, space=space, seed=seed, weights_manager=weights_manager)
        self.tau = float(options.tau_max)

    def arch_weights(self) -> ArchWeights:
        weights, index = {}, {}
        for g, a, m in zip(self.groups, self.logits, self.masks):
            if g.kind != "choice":
                weights[g.name] = masked_softmax(a, m)
                continue
            weights[g.name], idx = gumbel_softmax(a, m, self.tau, self.generator, self.hard)
            if idx is not None:
                index[g.name] = idx
        return ArchWeights(weights, index if self.hard else None)

    def eval_weights(self) -> ArchWeights:
        """Soft samplers: the softmax. Hard (GDAS): the most likely path, one-hot with its
        indices - a supernet trained one path at a time never ran the softmax mixture of
        every op, so scoring it with that mixture measured an untrained network (chance)."""
        if not self.hard:
            return super().eval_weights()
        weights, index = {}, {}
        for g, p in zip(self.groups, self.probabilities().values()):
            if g.kind != "choice":
                weights[g.name] = p
                continue
            index[g.name] = p.detach().argmax(dim=-1)
            weights[g.name] = torch.zeros_like(p).scatter_(-1, index[g.name][:, None], 1.0)
        return ArchWeights(weights, index)

    def on_epoch(self, epoch: int, epochs: int) -> None:
        o = self.options
        if o.schedule == "linear":
            t = epoch / max(1, epochs - 1)
            self.tau = o.tau_max - (o.tau_max - o.tau_min) * min(1.0, t)
        else:
            self.tau = max(o.tau_min, o.tau_max * o.decay ** epoch)


@register("controller", "gdas")
class GDASController(GumbelController):
    """GDAS: hard one-hot Gumbel samples (one op per edge runs), temperature 10 -> 0.1 linearly."""

    hard = True

    @dataclass(frozen=True)
    class Options(GumbelOptions):
        tau_max: float = opt(10.0, gt=0, help="temperature at the first epoch")
        tau_min: float = opt(0.1, gt=0, help="temperature at the last epoch")
        schedule: Literal["linear", "exponential"] = opt("linear", help="linear or exponential annealing")


@register("controller", "snas")
class SNASController(GumbelController):
    """SNAS: soft Gumbel-softmax samples, temperature annealed exponentially from 1."""

    @dataclass(frozen=True)
    class Options(GumbelOptions):
        pass


@register("controller", "fbnet")
class FBNetController(GumbelController):
    """FBNet: soft Gumbel-softmax over each layer's blocks, temperature 5 * exp(-0.045 epoch)."""

    @dataclass(frozen=True)
    class Options(GumbelOptions):
        lr: float = opt(0.01, gt=0, help="Adam learning rate of the architecture parameters")
        beta1: float = opt(0.9, min=0.0, lt=1.0, help="Adam beta1")
        weight_decay: float = opt(5e-4, min=0.0, help="weight decay of the architecture parameters")
        tau_max: float = opt(5.0, gt=0, help="temperature at the first epoch")
        tau_min: float = opt(0.01, gt=0, help="temperature floor")
        decay: float = opt(math.exp(-0.045), gt=0, max=1.0, help="per-epoch temperature factor")
