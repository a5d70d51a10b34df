"""Robust training as an option of the training core: fault-aware and adversarial.

:func:`hwnas.search.training.train_pass` takes a ``perturb`` callable; this module builds
it from the ``robust:`` options of a training section:

* ``method: faults`` — every step runs forward *and* backward under a fresh seeded draw
  of the fault models (weights corrupted in place, feature maps by hooks); the optimiser
  then steps the clean weights (FTT-NAS' fault-aware training);
* ``method: pgd`` — every batch is replaced by its PGD-k adversarial inputs (Madry et
  al.'s adversarial training);
* ``method: fgsm`` — one FGSM step from a uniform random start, step 1.25 eps (Wong et
  al.'s "fast is better than free").

``fraction`` < 1 perturbs only that share of the steps (every other step at 0.5), so a
network also keeps seeing clean inputs / weights when asked.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.options import opt
from hwnas.search.robust.attacks import AttackOptions, attack
from hwnas.search.robust.faults import FaultOptions, inject, parse_faults
from hwnas.search.training import Perturb


@dataclass(frozen=True)
class RobustTrainOptions:
    """The ``robust:`` section of a training loop's options."""

    method: Literal["off", "faults", "pgd", "fgsm"] = opt(
        "off", help="off; faults (inject `faults` in every step); pgd or fgsm (train on adversarial inputs)")
    faults: list[Any] = opt([], help="fault models for method faults, e.g. [{target: weights, rate: 0.002, "
                                     "format: int8}]")
    attack: AttackOptions = opt(AttackOptions(steps=7), help="the attack of method pgd / fgsm (its method is "
                                                             "taken from `method`)")
    fraction: float = opt(1.0, gt=0.0, max=1.0, help="share of the steps that are perturbed")
    seed: int = opt(0, min=0, help="seed of the fault draws and random starts (added to the run's)")

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.method == "faults":
            if not self.faults:
                raise ConfigError("faults: method faults needs at least one fault model")
            parse_faults(self.faults)
        elif self.faults:
            raise ConfigError(f"faults: fault models are used by method faults only (method is {self.method})")

    def fault_models(self) -> list[FaultOptions]:
        return parse_faults(self.faults)

    def attack_options(self) -> AttackOptions:
        """The attack with the training method's name (pgd or fgsm)."""
        a = self.attack
        return AttackOptions(method="fgsm" if self.method == "fgsm" else "pgd", norm=a.norm, eps=a.eps, step=a.step,
                             steps=a.steps, restarts=a.restarts, random_start=a.random_start, bounds=a.bounds)


class RobustPerturb:
    """The stateful ``perturb`` of one training run: counts steps, so draws differ per step
    and a run repeats exactly from the same seed."""

    def __init__(self, o: RobustTrainOptions, seed: int) -> None:
        self.options = o
        self.seed = int(seed) + int(o.seed)
        self.step = 0
        self.faults = o.fault_models() if o.method == "faults" else []
        self.attack = o.attack_options() if o.method in ("pgd", "fgsm") else None
        self.gen = torch.Generator().manual_seed(self.seed)

    def _active(self) -> bool:
        """Whether this step is perturbed: ``fraction`` of the steps, spread evenly."""
        f = self.options.fraction
        return int((self.step + 1) * f) > int(self.step * f)

    @contextlib.contextmanager
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Iterator[torch.Tensor]:
        active, step = self._active(), self.step
        self.step += 1
        if not active:
            yield x
        elif self.attack is not None:
            yield attack(model, x, y, self.attack, self.gen)
        else:
            with inject(model, self.faults, (self.seed * 7919 + step) & 0x7FFFFFFF):
                yield x


def make_perturb(o: RobustTrainOptions | None, seed: int = 0) -> Perturb | None:
    """The ``perturb`` argument of :func:`train_pass` for options ``o`` (None when off)."""
    if o is None or o.method == "off":
        return None
    return RobustPerturb(o, seed)
