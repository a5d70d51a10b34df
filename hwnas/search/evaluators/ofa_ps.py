"""Once-for-All progressive shrinking with knowledge distillation (evaluator ``ofa_ps``).

The mepa evaluator trains every subnet from the start; OFA instead trains the largest
network first, then lets the kernel size vary, then depth, then expansion, each phase
with its own number of supernet steps and learning rate, and every sampled subnet
learns from a teacher's soft targets (knowledge distillation) besides the labels. As in
OFA the teacher is the full network: a frozen copy of the largest subnet taken when the
full phase ends (kept in the checkpoint), or (``teacher:``) a separately trained network
of the same space; ``kd_teacher: largest`` distils from the live largest subnet instead.
Each phase may train several subnets per step (``phase_subnets``; OFA: 1, 1, 2, 4).
A phase may begin with a partial sub-phase (``phase_partial_steps``) in which the
dimension it makes elastic takes only its two largest choices, at a fraction of the
phase's learning rate (OFA: depth {4, 3} then {4, 3, 2}, expansion {6, 4} then {6, 4, 3},
25 of each phase's 145 epochs at a third of its rate).
Before the expansion phase the hidden channels are sorted by importance
(``sort_channels`` of the supernet), so small expansions keep the channels that matter,
and, as OFA does before its second expansion sub-phase, again when the partial sub-phase
ends (the channels the second-largest expansion trained kept in front);
an optional fifth phase, ``width``, makes the stages' output widths elastic (a space with
``stage_widths``) after sorting each stage's channels likewise (``sort_stage_channels``).
The input resolution is elastic in every phase, as in OFA: one input size per step, drawn
for the step as OFA's loader draws one per batch, shared by the step's subnets and by the
teacher, which thus sees the very input its students see (a teacher at another resolution
than its student gives targets that input cannot support). As OFA (``no_decay_keys``
``bn#bias``), BatchNorm parameters and biases get no weight decay (``no_decay_bn_bias``).

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
from hwnas.search.training import all_reduce_sum, backward, clip_and_step, lr_factor, resize_input

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
        phase_partial_steps: list[int] = opt([], min=0, help="per phase, its first steps in which the dimension "
                                                            "it makes elastic takes only its two largest choices "
                                                            "(OFA: depth and expand, 25 of 145 epochs); empty = none")
        partial_lr_scale: float = opt(1 / 3, gt=0, max=1, help="peak learning rate of a partial sub-phase, as a "
                                                              "fraction of its phase's (OFA: 2.5e-3 / 7.5e-3)")
        no_decay_bn_bias: bool = opt(True, help="no weight decay on BatchNorm parameters and biases (OFA's "
                                               "no_decay_keys 'bn#bias')")

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
            self._check_partial()

        def _check_partial(self) -> None:
            if not self.phase_partial_steps:
                return
            if len(self.phase_partial_steps) != len(self.phases):
                raise ConfigError(f"phase_partial_steps: one entry per phase ({len(self.phases)}), "
                                  f"got {len(self.phase_partial_steps)}")
            for name, part, steps in zip(self.phases, self.phase_partial_steps, self.phase_steps):
                if part and (name == "full" or part >= steps):
                    raise ConfigError(f"phase_partial_steps: the {name} phase's partial sub-phase ({part} steps) "
                                      f"must be shorter than the phase ({steps}) and the full phase has none")

    def __init__(self, options: "ProgressiveShrinkingEvaluator.Options | None" = None, **kw: Any) -> None:
        super().__init__(options or ProgressiveShrinkingEvaluator.Options(), **kw)
        self._teacher: nn.Module | None = None  # a checkpoint's, or the snapshot after the full phase
        if self.options.teacher is not None and self.options.kd_weight > 0:
            self._teacher = self.runtime.model(load_teacher(self.space, self.options.teacher))

    def _param_groups(self) -> Any:
        if self.options.no_decay_bn_bias:  # OFA: no_decay_keys 'bn#bias'
            return decay_groups(self.weights_manager.module, self.options.weight_decay)
        return super()._param_groups()

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

    def _partial(self, index: int) -> bool:
        """Whether this step is in phase ``index``'s partial sub-phase."""
        parts = self.options.phase_partial_steps
        return bool(parts) and self.steps_done - self._phase_start(index) < parts[index]

    def _sample(self, phase: str, resolution: int | None = None, partial: bool = False) -> Arch:
        """A random architecture with only this phase's elastic dimensions free (the
        dimension the phase adds only among its two largest choices when ``partial``), the
        others at their largest choice; the resolution decision at index ``resolution``
        (the step's), or drawn when the step has none."""
        out = []
        for d in self.space.decisions:
            largest = int(d.choices.index(max(d.choices)))
            if d.name == "resolution" and resolution is not None:
                out.append(int(resolution))
            elif partial and d.name.endswith(ELASTIC[phase][-1]):
                top = sorted(range(d.size), key=d.choices.__getitem__, reverse=True)[:2]
                out.append(int(top[int(self.rng.integers(len(top)))]))
            elif d.name == "resolution" or d.name.endswith(ELASTIC[phase]):
                out.append(int(self.rng.integers(d.size)))
            else:
                out.append(largest)
        return self.space.validate(out)

    def _step_resolution(self, x: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """This step's input size (index of the ``resolution`` decision, drawn as OFA's
        loader draws one per batch) and the batch resized to it as the supernet resizes
        (:func:`resize_input`), so the teacher sees what the students see; spaces without
        a resolution decision keep the batch."""
        names = [d.name for d in self.space.decisions]
        if "resolution" not in names:
            return x, None
        d = self.space.decisions[names.index("resolution")]
        index = int(self.rng.integers(d.size))
        return resize_input(x, int(d.choices[index])), index

    def _set_lr(self, index: int) -> None:
        """The learning rate of this step: the phase's own, on a schedule that restarts in
        every phase as OFA's does (warm-up over ``warmup_steps``, then cosine decay towards
        ``lr_min`` over the phase's steps; the last phase stays at its end value past it),
        or constant."""
        o = self.options
        lr, warmup = o.phase_lrs[index], o.warmup_steps
        start, length = self._phase_start(index), o.phase_steps[index]
        part = o.phase_partial_steps[index] if o.phase_partial_steps else 0
        if self._partial(index):  # OFA's first sub-phase: its own cosine, a lower peak, no warm-up
            lr, length, warmup = lr * o.partial_lr_scale, part, 0
        else:
            start, length = start + part, length - part
        factor = lr_factor(self.steps_done - start, length, min(warmup, length), o.schedule,
                           min(1.0, o.lr_min / lr))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * factor

    # -- training -------------------------------------------------------------------------
    def _enter_phase(self, index: int) -> None:
        """After the full phase, take the snapshot teacher (unless a checkpoint restored it);
        at the first step of the expand (width) phase, sort hidden (stage) channels by
        importance - once: the step count says where a resumed run is - and drop momentum
        of the old order; and, as OFA sorts again before its second expansion sub-phase,
        once more when the expand phase's partial sub-phase ends (see :meth:`_resort`)."""
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
        parts = self.options.phase_partial_steps
        if phase == "expand" and parts and parts[index] and self.steps_done == self._phase_start(index) + parts[index]:
            self._resort()

    def _resort(self) -> None:
        """OFA's ``re_organize_middle_weights`` at the second expansion stage: after the
        sub-phase that trained only the two largest expansions, sort each block's hidden
        channels again, the smaller of those two expansions' channels kept in front (they
        are what it trained), so the smallest expansion, free from now on, starts from the
        most important of them rather than from the order of before the sub-phase."""
        expansions = sorted({c for d in self.space.decisions if d.name.endswith(".e") for c in d.choices})
        if len(expansions) < 3 or not hasattr(self.weights_manager, "sort_channels"):
            return
        self.weights_manager.sort_channels(keep_expansion=expansions[-2])
        self.optimizer.state.clear()
        log.info("ofa_ps: channels sorted again (expansion %s's kept in front) after the partial sub-phase",
                 expansions[-2])

    @torch.no_grad()
    def _teacher_logits(self, x: torch.Tensor, phase: str, resolution: int | None = None) -> torch.Tensor | None:
        """Soft targets of this step on the students' input ``x`` (already at the step's
        resolution): the frozen teacher (a checkpoint, or the snapshot of the largest
        subnet; in train mode as OFA's, so BN uses this batch's statistics), or the live
        largest subnet at the step's resolution (index ``resolution``) on the same batch
        (``kd_teacher: largest``); none in the full phase or with kd_weight 0."""
        if phase == "full" or self.options.kd_weight <= 0:
            return None
        with self.runtime.autocast():
            if self._teacher is not None:  # OFA runs its teacher in train mode: BN on the batch's statistics
                return self._teacher.train()(x).float()  # (running ones mix the resolutions trained)
            largest = list(self.weights_manager.extreme_arch("max"))
            if resolution is not None:
                largest[[d.name for d in self.space.decisions].index("resolution")] = resolution
            return self.weights_manager.assemble_candidate(Rollout(self.space.validate(largest)))(x).float()

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
            x, resolution = self._step_resolution(x)  # one input size per step, teacher included (OFA)
            self.optimizer.zero_grad(set_to_none=True)
            teacher = self._teacher_logits(x, phase, resolution)
            # the full phase trains the largest network at the step's resolution (OFA: elastic
            # resolution in every phase), one per step
            partial = self._partial(index)
            archs = [self._sample(phase, resolution, partial)
                     for _ in range(1 if phase == "full" else o.phase_subnets[index]
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


def decay_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """``module``'s trainable parameters in two optimizer groups: BatchNorm weights and
    biases and every bias without weight decay (OFA's ``no_decay_keys='bn#bias'``: decay
    pulls BN's scales towards zero, which shrinks what every subnet shares), the rest
    (convolutions, linear layers, kernel transforms) with ``weight_decay``."""
    no_decay: dict[int, nn.Parameter] = {}
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, nn.modules.batchnorm._BatchNorm) or name == "bias":
                no_decay[id(p)] = p
    rest = [p for p in module.parameters() if p.requires_grad and id(p) not in no_decay]
    return [{"params": rest, "weight_decay": weight_decay},
            {"params": [p for p in no_decay.values() if p.requires_grad], "weight_decay": 0.0}]


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
