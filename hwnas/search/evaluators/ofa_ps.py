"""Once-for-All progressive shrinking with knowledge distillation (evaluator ``ofa_ps``).

The mepa evaluator trains every subnet from the start; OFA instead trains the largest
network first, then lets the kernel size vary, then depth, then expansion, each phase
with its own number of supernet steps and learning rate, and every sampled subnet
learns from the largest one's soft targets (knowledge distillation) besides the labels.
Before the expansion phase the hidden channels are sorted by importance
(``sort_channels`` of the supernet), so small expansions keep the channels that matter.
The input resolution is elastic in every phase, as in OFA.

The phase follows from the number of supernet steps done, which the checkpoint holds,
so a run resumes inside a phase or between phases where it stopped. Scoring is mepa's
(BN recalibrated per subnet on training batches, accuracy on the valid split).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.evaluators.mepa import MepaEvaluator
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch
from hwnas.search.training import backward, clip_and_step

log = logging.getLogger(__name__)

#: OFA's order of phases; a schedule is a prefix of it (a phase needs the ones before).
PHASES = ("full", "kernel", "depth", "expand")
#: Decision-name suffixes each phase makes elastic (the resolution always is).
ELASTIC = {"full": (), "kernel": (".k",), "depth": (".k", ".depth"), "expand": (".k", ".depth", ".e")}


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of the student against the teacher's softened distribution, times
    T^2 so its gradients keep their scale as the temperature changes (Hinton et al.)."""
    soft = F.softmax(teacher / temperature, dim=1)
    return -(soft * F.log_softmax(student / temperature, dim=1)).sum(1).mean() * temperature ** 2


@register("evaluator", "ofa_ps")
class ProgressiveShrinkingEvaluator(MepaEvaluator):
    """Shared weights trained by OFA's progressive shrinking, with distillation from the
    largest subnet; scores rollouts like mepa."""

    @dataclass(frozen=True)
    class Options(MepaEvaluator.Options):
        phases: list[str] = opt(list(PHASES), min_items=1, unique=True,
                                help="phases in OFA's order full, kernel, depth, expand (a prefix of it)")
        phase_steps: list[int] = opt([100, 100, 100, 100], min=1, min_items=1,
                                     help="supernet steps of each phase (the last phase continues past its end)")
        phase_lrs: list[float] = opt([0.05, 0.02, 0.02, 0.02], gt=0, min_items=1, help="learning rate of each phase (scaled by the schedule's factor)")
        subnets_per_step: int = opt(2, min=1, help="subnets sampled and trained per step (after the full phase)")
        kd_weight: float = opt(1.0, min=0, help="weight of the distillation loss from the largest subnet (0 = off)")
        kd_temperature: float = opt(1.0, gt=0, help="softmax temperature of the distillation targets")

        def check(self) -> None:
            MepaEvaluator.Options.check(self)
            if list(self.phases) != list(PHASES[:len(self.phases)]):
                missing = next(p for i, p in enumerate(PHASES) if i >= len(self.phases) or self.phases[i] != p)
                raise ConfigError(f"phases: OFA's phases run in the order {', '.join(PHASES)} and each needs the "
                                  f"ones before it ({missing!r} is missing or out of place), got {list(self.phases)}")
            if not len(self.phase_steps) == len(self.phase_lrs) == len(self.phases):
                raise ConfigError(f"phase_steps: phases, phase_steps and phase_lrs need one entry per phase, got "
                                  f"{len(self.phases)}, {len(self.phase_steps)} and {len(self.phase_lrs)}")

    def __init__(self, options: "ProgressiveShrinkingEvaluator.Options | None" = None, **kw: Any) -> None:
        super().__init__(options or ProgressiveShrinkingEvaluator.Options(), **kw)
        if self.runtime.distributed:
            raise ConfigError("evaluator.type: ofa_ps runs on one process (use mepa for DDP)")

    # -- schedule -------------------------------------------------------------------------
    def phase_at(self, step: int) -> int:
        """Index of the phase supernet step ``step`` (0-based) belongs to."""
        ends = np.cumsum(self.options.phase_steps)
        return int(min(np.searchsorted(ends, step, side="right"), len(ends) - 1))

    def _phase_start(self, phase: int) -> int:
        return int(sum(self.options.phase_steps[:phase]))

    def _sample(self, phase: str) -> Arch:
        """A random architecture with only this phase's elastic dimensions (and the
        resolution) free; the others at their largest choice."""
        out = []
        for d in self.space.decisions:
            free = d.name == "resolution" or d.name.endswith(ELASTIC[phase])
            out.append(int(self.rng.integers(d.size)) if free else int(d.choices.index(max(d.choices))))
        return self.space.validate(out)

    def _set_lr(self, lr: float) -> None:
        """The phase's learning rate becomes the schedule's base (a constant schedule keeps
        it; a cosine one scales it by its factor at this step)."""
        sch = self.scheduler
        sch.base_lrs = [lr for _ in self.optimizer.param_groups]
        factor = sch.lr_lambdas[0](sch.last_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * factor

    # -- training -------------------------------------------------------------------------
    def update_evaluator(self, controller: Controller | None = None) -> dict[str, float]:
        """``steps`` supernet steps of the current phase(s); returns loss and accuracy."""
        o, rt, wm = self.options, self.runtime, self.weights_manager
        module = wm.module
        module.train()
        losses, accs = [], []
        largest = wm.extreme_arch("max")
        for _ in range(o.steps):
            index = self.phase_at(self.steps_done)
            phase = o.phases[index]
            if phase == "expand" and self.steps_done == self._phase_start(index) and hasattr(wm, "sort_channels"):
                wm.sort_channels()
                self.optimizer.state.clear()  # momentum belongs to the old channel order
                log.info("ofa_ps: channels sorted by importance before the expand phase")
            self._set_lr(o.phase_lrs[index])
            x, y = rt.batch(self._next_batch())
            self.optimizer.zero_grad(set_to_none=True)
            teacher = None
            if phase != "full" and o.kd_weight > 0:
                with torch.no_grad(), rt.autocast():
                    teacher = wm.assemble_candidate(Rollout(largest))(x).float()
            archs = [largest] if phase == "full" else [self._sample(phase) for _ in range(o.subnets_per_step)]
            for arch in archs:
                with rt.autocast():
                    logits = wm.assemble_candidate(Rollout(arch))(x).float()
                loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
                if teacher is not None:
                    loss = loss + o.kd_weight * distillation_loss(logits, teacher, o.kd_temperature)
                backward(loss, rt)
                losses.append(float(loss.detach()))
                accs.append(float((logits.argmax(1) == y).float().mean()))
            clip_and_step(self.optimizer, module.parameters(), o.grad_clip, rt.scaler)
            self.scheduler.step()
            self.steps_done += 1
        if not losses:
            return {}
        return {"supernet_loss": float(np.mean(losses)), "supernet_accuracy": float(np.mean(accs)),
                "ps_phase": float(self.phase_at(max(self.steps_done - 1, 0)))}
