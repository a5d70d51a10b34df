"""Shared-weights evaluator ``mepa``: train a supernet, score subnets with its weights.

A search with a weight-sharing supernet alternates two things: a few steps of
supernet training on sampled subnets (:meth:`MepaEvaluator.update_evaluator`) and
scoring the controller's rollouts with the current shared weights
(:meth:`MepaEvaluator.evaluate`). Scoring is cheap (no training per architecture), but
only fair if every subnet is scored the same way, so:

* BatchNorm statistics are recalibrated for each subnet on the *same* few training
  batches (slices of shared running stats belong to no particular subnet), and the
  supernet's own buffers are restored afterwards, so evaluation never changes training;
* every subnet is scored on the same held-out batches (the dataset's ``valid`` split).

Sampling during training is uniform single-path by default; ``sandwich`` trains the
largest, the smallest and a random subnet on each batch (gradients summed), which
keeps the extremes of an elastic supernet trained; ``controller`` trains the subnets
the controller proposes (MEPA's original rule).

Under DDP (``hwnas search --nproc N``) every rank draws the same subnets (same seeds),
takes its part of each global batch, and the subnets of one step run in a single
DistributedDataParallel forward (unused parameters allowed: a subnet uses a slice of
the supernet), so each step is one gradient all-reduce. Scoring is replicated on every
rank on the same held-out batches, so all ranks compute the same rewards and their
controllers stay in step.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.run_section import OptimOptions
from hwnas.search.controllers.base import Controller
from hwnas.search.datasets.base import Dataset
from hwnas.search.evaluators.base import Evaluator
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.runtime import Runtime
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.training import (
    backward,
    clip_and_step,
    evaluate,
    first_batches,
    inputs_of,
    make_optimizer,
    make_scheduler,
    preserved_buffers,
    recalibrate_bn,
)

log = logging.getLogger(__name__)

#: Perfs this evaluator measures itself with the shared weights.
TASK_PERFS: tuple[str, ...] = ("accuracy", "loss")


def score_with_recalibrated_bn(model: nn.Module, owner: nn.Module, calib: Sequence[torch.Tensor],
                               batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                               runtime: Runtime | None = None) -> dict[str, float]:
    """Accuracy and mean loss of ``model`` on ``batches`` after recomputing BN statistics
    on ``calib`` (cumulative average); every buffer of ``owner`` is restored afterwards."""
    with preserved_buffers(owner):
        recalibrate_bn(model, calib, owner=owner, runtime=runtime)
        res = evaluate(model, batches, runtime=runtime)
    return {"accuracy": res["accuracy"], "loss": res["loss"]}


class _MultiPath(nn.Module):
    """Several subnets of one supernet in one forward (one DDP all-reduce per step)."""

    def __init__(self, supernet: nn.Module) -> None:
        super().__init__()
        self.supernet = supernet

    def forward(self, x: torch.Tensor, configs: Sequence[Any]) -> list[torch.Tensor]:
        return [self.supernet(x, c) for c in configs]


@register("evaluator", "mepa")
class MepaEvaluator(Evaluator):
    """Shared weights: trains a supernet on sampled subnets, scores rollouts with it."""

    needs_shared_weights = True

    @dataclass(frozen=True)
    class Options(OptimOptions):
        schedule: Literal["cosine", "constant"] = opt(
            "constant", help="constant, or cosine decay to 0 over total_steps")
        total_steps: int = opt(0, min=0, help="supernet steps the cosine schedule spans (schedule: cosine)")
        grad_clip: float = opt(5.0, min=0, help="gradient-norm clip (0 = off)")
        steps: int = opt(20, min=0, help="supernet training steps per update_evaluator call")
        batch_size: int = opt(64, min=1, help="training batch size")
        sampling: Literal["uniform", "sandwich", "controller"] = opt(
            "uniform", help="subnets trained per step: one uniform at random; largest + smallest + random; "
                            "or the controller's samples")
        eval_batches: int = opt(2, min=1, help="held-out (valid split) batches each rollout is scored on")
        eval_batch_size: int = opt(128, min=1, help="batch size for scoring and BN recalibration")
        calib_batches: int = opt(2, min=0, help="training batches used to recalibrate BN per subnet (0 = off)")

        def check(self) -> None:
            if self.schedule == "cosine" and self.total_steps < 1:
                raise ConfigError("total_steps: a cosine schedule needs the number of supernet steps it spans")

    def __init__(self, options: "MepaEvaluator.Options | None" = None, *, space: SearchSpace,
                 weights_manager: Any, dataset: Dataset | None, objective: Objective | Sequence[Objective] | None = None,
                 seed: int = 0, runtime: Runtime | None = None, **_: Any) -> None:
        self.options = options or MepaEvaluator.Options()
        self.runtime = runtime or Runtime.cpu()
        self.space = space
        if not hasattr(weights_manager, "module"):
            raise ConfigError(f"evaluator.type: mepa needs a shared-weights manager (supernet), "
                              f"got {type(weights_manager).__name__}")
        self.weights_manager = weights_manager
        if dataset is None:
            raise ConfigError("dataset: the mepa evaluator trains shared weights and needs a dataset section")
        self.dataset = dataset
        self.objectives: list[Objective] = [objective] if isinstance(objective, Objective) else list(objective or [])
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.steps_done = 0
        self._epoch = 0
        self._in_epoch = 0  # batches of the current epoch already used (resume skips them)
        self._batches: Iterator[Any] | None = None
        self._held_out: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._calib: list[torch.Tensor] | None = None
        o = self.options
        self.runtime.model(weights_manager.module)  # in place: candidates share the moved weights
        self.optimizer = make_optimizer(self._param_groups(), o)
        self.scheduler = make_scheduler(self.optimizer, o, o.total_steps)
        self._ddp: nn.Module | None = None

    def _param_groups(self) -> Any:
        """What the optimizer trains: the shared weights (subclasses may split them into
        groups with options of their own)."""
        return self.weights_manager.module.parameters()

    # -- data -------------------------------------------------------------------------------
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """An endless stream of training batches, reshuffled (seeded) each epoch; after a
        resume the epoch's used batches are skipped, so training sees what it would have."""
        while True:
            if self._batches is None:
                rt = self.runtime
                self._batches = iter(self.dataset.loader("train", batch_size=self.options.batch_size, shuffle=True,
                                                         seed=self.seed * 1000 + self._epoch, rank=rt.rank,
                                                         world=rt.world, drop_last=rt.distributed))
                for _ in range(self._in_epoch):
                    next(self._batches, None)
            try:
                batch = next(self._batches)
            except StopIteration:
                self._epoch += 1
                self._in_epoch = 0
                self._batches = None
                continue
            self._in_epoch += 1
            return batch

    def _fixed_batches(self) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        o = self.options
        if self._held_out is None or self._calib is None:
            held = first_batches(self.dataset.loader("valid", batch_size=o.eval_batch_size, shuffle=False),
                                 o.eval_batches)
            if not held:
                raise ConfigError("evaluator: mepa scores on the dataset's valid split, which is empty "
                                  "(set dataset.valid_fraction > 0)")
            calib = self.dataset.loader("train", batch_size=o.eval_batch_size, shuffle=True, seed=self.seed + 17)
            self._held_out, self._calib = held, inputs_of(first_batches(calib, o.calib_batches))
        return self._calib, self._held_out

    # -- training ---------------------------------------------------------------------------
    def _train_archs(self, controller: Controller | None) -> list[Arch]:
        o = self.options
        wm = self.weights_manager
        if o.sampling == "sandwich":
            return [wm.extreme_arch("max"), wm.extreme_arch("min"), self.space.sample(self.rng)]
        if o.sampling == "controller" and controller is not None:
            return [controller.sample(1)[0].arch]
        return [self.space.sample(self.rng)]

    def update_evaluator(self, controller: Controller | None = None) -> dict[str, float]:
        """``steps`` SGD steps of the shared weights; returns the mean loss and accuracy."""
        o = self.options
        module = self.weights_manager.module
        module.train()
        losses, accs = [], []
        rt = self.runtime
        if rt.distributed:
            return self._update_ddp(controller)
        for _ in range(o.steps):
            x, y = rt.batch(self._next_batch())
            self.optimizer.zero_grad(set_to_none=True)
            for arch in self._train_archs(controller):
                cand = self.weights_manager.assemble_candidate(Rollout(arch))
                with rt.autocast():
                    logits = cand(x).float()
                loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
                backward(loss, rt)
                losses.append(float(loss.detach()))
                accs.append(float((logits.argmax(1) == y).float().mean()))
            clip_and_step(self.optimizer, module.parameters(), o.grad_clip, rt.scaler)
            self.scheduler.step()
            self.steps_done += 1
        if not losses:
            return {}
        stats = {"supernet_loss": float(np.mean(losses)), "supernet_accuracy": float(np.mean(accs))}
        log.debug("mepa: %d steps, %s", o.steps, stats)
        return stats

    def _update_ddp(self, controller: Controller | None) -> dict[str, float]:
        """The DDP version of a training round: one forward of all the step's subnets."""
        from hwnas.search.distributed import wrap
        from hwnas.search.training import all_reduce_sum

        o, rt, module = self.options, self.runtime, self.weights_manager.module
        if self._ddp is None:
            self._ddp = wrap(_MultiPath(module), rt, find_unused=True)
        module.train()
        losses, accs = [], []
        for _ in range(o.steps):
            x, y = rt.batch(self._next_batch())
            self.optimizer.zero_grad(set_to_none=True)
            configs = [self.weights_manager.config_of(self.space.validate(a)) for a in self._train_archs(controller)]
            with rt.autocast():
                outs = [t.float() for t in self._ddp(x, configs)]
            step_losses = [F.cross_entropy(z, y, label_smoothing=o.label_smoothing) for z in outs]
            backward(torch.stack(step_losses).sum(), rt)
            clip_and_step(self.optimizer, module.parameters(), o.grad_clip, rt.scaler)
            self.scheduler.step()
            self.steps_done += 1
            losses += [float(v.detach()) for v in step_losses]
            accs += [float((z.argmax(1) == y).float().mean()) for z in outs]
        if not losses:
            return {}
        sums = all_reduce_sum([float(np.mean(losses)), float(np.mean(accs))], rt)
        return {"supernet_loss": sums[0] / rt.world, "supernet_accuracy": sums[1] / rt.world}

    # -- scoring ----------------------------------------------------------------------------
    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        """Fill ``accuracy`` and ``loss`` with the shared weights, then the other objectives'
        perfs (e.g. latency from a cost model) and the reward of the first objective."""
        calib, held = self._fixed_batches()
        module = self.weights_manager.module
        for r in rollouts:
            cand = r.candidate if r.candidate is not None else self.weights_manager.assemble_candidate(r)
            r.perfs.update(score_with_recalibrated_bn(cand, module, calib, held, self.runtime))
        self._apply_objectives(rollouts)

    def _apply_objectives(self, rollouts: Sequence[Rollout]) -> None:
        """Ask each objective (each child of a composite) that measures something other
        than accuracy/loss - e.g. latency from a cost model - for its perfs; a task
        objective would re-score candidates without recalibrated BN, so it is skipped."""
        if not self.objectives:
            for r in rollouts:
                r.reward = r.perfs["accuracy"]
            return
        candidates = [r.candidate for r in rollouts]
        for top in self.objectives:
            children = [c for _, _, c in getattr(top, "children", [])] or [top]
            for obj in children:
                if set(obj.perf_names) and set(obj.perf_names) <= set(TASK_PERFS):
                    continue
                for r, perfs in zip(rollouts, obj.perfs(rollouts, candidates)):
                    for k, v in perfs.items():
                        r.perfs.setdefault(k, float(v))
        for r in rollouts:
            r.reward = float(self.objectives[0].reward(r.perfs))

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done, "epoch": self._epoch, "batch": self._in_epoch,
                "rng": self.rng.bit_generator.state, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps_done = int(state.get("steps_done", 0))
        self._epoch = int(state.get("epoch", 0))
        self._in_epoch = int(state.get("batch", 0))
        self._batches = None
        if "rng" in state:
            self.rng.bit_generator.state = dict(state["rng"])
        if "optimizer" in state:
            groups, here = len(dict(state["optimizer"]).get("param_groups", [])), len(self.optimizer.param_groups)
            if groups != here:
                raise ConfigError(f"the checkpoint's optimizer has {groups} parameter group(s) and this run's {here}: it "
                                  "was written with other optimizer settings (ofa_ps no_decay_bn_bias puts BatchNorm "
                                  "parameters and biases in a group of their own); resume with the settings it was "
                                  "written with, or restart the search")
            self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
