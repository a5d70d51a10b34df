"""Once-for-All progressive shrinking with knowledge distillation (evaluator ``ofa_ps``).

The mepa evaluator trains every subnet from the start; OFA instead trains the largest
network first, then lets the kernel size vary, then depth, then expansion, each phase
with its own number of supernet steps and learning rate, and every sampled subnet
learns from a teacher's soft targets (knowledge distillation) besides the labels. As in
OFA the teacher is the full network: a frozen copy of the largest subnet taken when the
full phase ends (kept in the checkpoint), or (``teacher:``) a separately trained network
of the same space; ``kd_teacher: largest`` distils from the live largest subnet instead.
Each phase may train several subnets per step (``phase_subnets``; OFA: 1, 1, 2, 4).
Before the expansion phase the hidden channels are sorted by importance
(``sort_channels`` of the supernet), so small expansions keep the channels that matter;
an optional fifth phase, ``width``, makes the stages' output widths elastic (a space with
``stage_widths``) after sorting each stage's channels likewise (``sort_stage_channels``).
The input resolution is elastic in every phase, as in OFA.

The phase follows from the number of supernet steps done, which the checkpoint holds,
so a run resumes inside a phase or between phases where it stopped. Scoring is mepa's
(BN recalibrated per subnet on training batches, accuracy on the valid split). Under
DDP (``--nproc``) every rank samples the same subnets (same seeded stream), takes its
part of each global batch, and a step's subnets run in one DistributedDataParallel
forward, so each step is one gradient all-reduce.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.config import opt
from hwnas.errors import ConfigError, ValidationError
from hwnas.inputs import first_line
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.evaluators.mepa import MepaEvaluator, _MultiPath
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.training import all_reduce_sum, backward, clip_and_step, lr_factor

log = logging.getLogger(__name__)

#: OFA's order of phases, then elastic stage width (spaces with ``stage_widths``); a
#: schedule is a prefix of it (a phase needs the ones before).
PHASES = ("full", "kernel", "depth", "expand", "width")
#: Decision-name suffixes each phase makes elastic (the resolution always is).
ELASTIC = {"full": (), "kernel": (".k",), "depth": (".k", ".depth"), "expand": (".k", ".depth", ".e"),
           "width": (".k", ".depth", ".e", ".w")}


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of the student against the teacher's softened distribution, times
    T^2 so its gradients keep their scale as the temperature changes (Hinton et al.)."""
    soft = F.softmax(teacher / temperature, dim=1)
    return -(soft * F.log_softmax(student / temperature, dim=1)).sum(1).mean() * temperature ** 2


@register("evaluator", "ofa_ps")
class ProgressiveShrinkingEvaluator(MepaEvaluator):
    """Shared weights trained by OFA's progressive shrinking, with distillation from the
    largest subnet (or a teacher checkpoint); scores rollouts like mepa. ``schedule:
    cosine`` restarts in every phase (``total_steps`` is not used)."""

    @dataclass(frozen=True)
    class Options(MepaEvaluator.Options):
        phases: list[str] = opt(list(PHASES[:4]), min_items=1, unique=True,
                                help="phases in OFA's order full, kernel, depth, expand, then width (elastic stage "
                                     "width of a space with stage_widths); a prefix of it")
        phase_steps: list[int] = opt([100, 100, 100, 100], min=1, min_items=1,
                                     help="supernet steps of each phase (the last phase continues past its end)")
        phase_lrs: list[float] = opt([0.05, 0.02, 0.02, 0.02], gt=0, min_items=1,
                                    help="peak learning rate of each phase (its schedule restarts per phase)")
        subnets_per_step: int = opt(2, min=1, help="subnets sampled and trained per step (after the full phase)")
        phase_subnets: list[int] = opt([], min=1, help="subnets per step of each phase, overriding subnets_per_step "
                                                      "(OFA: 1, 1, 2, 4); empty = subnets_per_step")
        kd_weight: float = opt(1.0, min=0, help="weight of the distillation loss from the largest subnet (0 = off)")
        kd_temperature: float = opt(1.0, gt=0, help="softmax temperature of the distillation targets")
        teacher: Path | None = opt(None, help="a `hwnas train` checkpoint of a subnet of this space to distil "
                                              "from (OFA's separately trained full network); default: the "
                                              "supernet's own largest subnet (see kd_teacher)")
        kd_teacher: Literal["snapshot", "largest"] = opt(
            "snapshot", help="without a teacher checkpoint: a frozen copy of the largest subnet taken when the "
                             "full phase ends (OFA), or the live largest subnet on the same batch")

        def check(self) -> None:  # the schedule restarts in every phase: total_steps is not used
            if list(self.phases) != list(PHASES[:len(self.phases)]):
                missing = next(p for i, p in enumerate(PHASES) if i >= len(self.phases) or self.phases[i] != p)
                raise ConfigError(f"phases: OFA's phases run in the order {', '.join(PHASES)} and each needs the "
                                  f"ones before it ({missing!r} is missing or out of place), got {list(self.phases)}")
            if self.phase_subnets and len(self.phase_subnets) != len(self.phases):
                raise ConfigError(f"phase_subnets: one entry per phase ({len(self.phases)}), "
                                  f"got {len(self.phase_subnets)}")
            if not len(self.phase_steps) == len(self.phase_lrs) == len(self.phases):
                raise ConfigError(f"phase_steps: phases, phase_steps and phase_lrs need one entry per phase, got "
                                  f"{len(self.phases)}, {len(self.phase_steps)} and {len(self.phase_lrs)}")

    def __init__(self, options: "ProgressiveShrinkingEvaluator.Options | None" = None, **kw: Any) -> None:
        super().__init__(options or ProgressiveShrinkingEvaluator.Options(), **kw)
        self._teacher: nn.Module | None = None  # a checkpoint's, or the snapshot after the full phase
        if self.options.teacher is not None and self.options.kd_weight > 0:
            self._teacher = self.runtime.model(load_teacher(self.space, self.options.teacher))

    @property
    def _snapshots(self) -> bool:
        o = self.options
        return o.teacher is None and o.kd_weight > 0 and o.kd_teacher == "snapshot"

    def _snapshot(self) -> nn.Module:
        """A frozen standalone copy of the supernet's largest subnet (eval mode)."""
        net = self.weights_manager.export_subnet(self.weights_manager.extreme_arch("max"))
        return self.runtime.model(net.eval().requires_grad_(False))

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

    def _set_lr(self, index: int) -> None:
        """The learning rate of this step: the phase's own, on a schedule that restarts in
        every phase as OFA's does (warm-up over ``warmup_steps``, then cosine decay towards
        ``lr_min`` over the phase's steps; the last phase stays at its end value past it),
        or constant."""
        o = self.options
        lr = o.phase_lrs[index]
        start, length = self._phase_start(index), o.phase_steps[index]
        factor = lr_factor(self.steps_done - start, length, min(o.warmup_steps, length), o.schedule,
                           min(1.0, o.lr_min / lr))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * factor

    # -- training -------------------------------------------------------------------------
    def _enter_phase(self, index: int) -> None:
        """After the full phase, take the snapshot teacher (unless a checkpoint restored it);
        at the first step of the expand (width) phase, sort hidden (stage) channels by
        importance - once: the step count says where a resumed run is - and drop momentum
        of the old order."""
        wm = self.weights_manager
        if index >= 1 and self._snapshots and (self._teacher is None or self.steps_done == self._phase_start(1)):
            self._teacher = self._snapshot()  # OFA distils from the full network as trained in phase one
            log.info("ofa_ps: teacher = frozen copy of the largest subnet at step %d", self.steps_done)
        phase, first_step = self.options.phases[index], self.steps_done == self._phase_start(index)
        sort = {"expand": "sort_channels", "width": "sort_stage_channels"}.get(phase)
        if first_step and sort is not None and hasattr(wm, sort):
            getattr(wm, sort)()
            self.optimizer.state.clear()  # momentum belongs to the old channel order
            log.info("ofa_ps: channels sorted by importance before the %s phase", phase)

    @torch.no_grad()
    def _teacher_logits(self, x: torch.Tensor, phase: str) -> torch.Tensor | None:
        """Soft targets of this step: the frozen teacher (a checkpoint, or the snapshot of
        the largest subnet; in train mode as OFA's, so BN uses this batch's statistics), or
        the live largest subnet on the same batch (``kd_teacher: largest``); none in the
        full phase or with kd_weight 0."""
        if phase == "full" or self.options.kd_weight <= 0:
            return None
        with self.runtime.autocast():
            if self._teacher is not None:  # OFA runs its teacher in train mode: BN on the batch's statistics
                return self._teacher.train()(x).float()  # (running ones mix the resolutions trained)
            largest = self.weights_manager.extreme_arch("max")
            return self.weights_manager.assemble_candidate(Rollout(largest))(x).float()

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
        o = self.options
        loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
        if teacher is not None:
            loss = loss + o.kd_weight * distillation_loss(logits, teacher, o.kd_temperature)
        return loss

    def _forward(self, x: torch.Tensor, archs: list[Arch]) -> list[torch.Tensor]:
        """Logits of each subnet; under DDP all of them in one DistributedDataParallel
        forward (one gradient all-reduce per step, as mepa does)."""
        rt, wm = self.runtime, self.weights_manager
        if rt.distributed:
            from hwnas.search.distributed import wrap

            if self._ddp is None:
                self._ddp = wrap(_MultiPath(wm.module), rt, find_unused=True)
            with rt.autocast():
                return [z.float() for z in self._ddp(x, [wm.config_of(self.space.validate(a)) for a in archs])]
        with rt.autocast():
            return [wm.assemble_candidate(Rollout(a))(x).float() for a in archs]

    def update_evaluator(self, controller: Controller | None = None) -> dict[str, float]:
        """``steps`` supernet steps of the current phase(s); returns loss and accuracy (the
        means over ranks under DDP, where every rank trains the same subnets on its part
        of each global batch)."""
        o, rt, wm = self.options, self.runtime, self.weights_manager
        wm.module.train()
        losses, accs = [], []
        for _ in range(o.steps):
            index = self.phase_at(self.steps_done)
            phase = o.phases[index]
            self._enter_phase(index)
            self._set_lr(index)
            x, y = rt.batch(self._next_batch())
            self.optimizer.zero_grad(set_to_none=True)
            teacher = self._teacher_logits(x, phase)
            # the full phase trains the largest network at a sampled resolution (OFA: elastic
            # resolution in every phase), one per step
            archs = [self._sample(phase) for _ in range(1 if phase == "full" else o.phase_subnets[index]
                                                        if o.phase_subnets else o.subnets_per_step)]
            if rt.distributed:  # one forward, one backward: DDP reduces once
                outs = self._forward(x, archs)
                step_losses = [self._loss(z, y, teacher) for z in outs]
                backward(torch.stack(step_losses).sum(), rt)
            else:  # one subnet at a time: only one graph held in memory
                outs, step_losses = [], []
                for arch in archs:
                    z = self._forward(x, [arch])[0]
                    loss = self._loss(z, y, teacher)
                    backward(loss, rt)
                    outs.append(z.detach())
                    step_losses.append(loss.detach())
            clip_and_step(self.optimizer, wm.module.parameters(), o.grad_clip, rt.scaler)  # lr: _set_lr
            self.steps_done += 1
            losses += [float(v.detach()) for v in step_losses]
            accs += [float((z.argmax(1) == y).float().mean()) for z in outs]
        if not losses:
            return {}
        loss, acc = (v / rt.world for v in all_reduce_sum([float(np.mean(losses)), float(np.mean(accs))], rt))
        return {"supernet_loss": loss, "supernet_accuracy": acc,
                "ps_phase": float(self.phase_at(max(self.steps_done - 1, 0)))}


    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """mepa's state plus the snapshot teacher's weights once taken (a run resumed after
        the full phase distils from the same frozen network)."""
        out = super().state_dict()
        if self._snapshots and self._teacher is not None:
            out["teacher"] = dict(self._teacher.state_dict())
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self._snapshots:
            self._teacher = None
            if isinstance(state.get("teacher"), Mapping):
                self._teacher = self._snapshot()  # the structure; the weights follow
                self._teacher.load_state_dict(dict(state["teacher"]))


def load_teacher(space: SearchSpace, path: Path) -> nn.Module:
    """The teacher network of a ``hwnas train`` checkpoint (loaded with weights_only=True),
    refused in one line unless it is a subnet of this very space (name, architecture and
    weight shapes: the same width, classes and input channels)."""
    from hwnas.search import final

    where = f"evaluator.teacher: {path}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        raise ConfigError(f"{where}: cannot read checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != final.CHECKPOINT_FORMAT:
        raise ConfigError(f"{where}: not a `hwnas train` checkpoint (format {final.CHECKPOINT_FORMAT})")
    if state.get("space") != space.name:
        raise ConfigError(f"{where}: holds a network of space {state.get('space')!r}, not {space.name!r}")
    try:
        arch = space.validate(state.get("arch"))
        return final.load_trained(space, arch, path).eval().requires_grad_(False)
    except (ValidationError, ConfigError, TypeError) as exc:
        raise ConfigError(f"{where}: not a subnet of this {space.name} space ({first_line(exc)})") from None
