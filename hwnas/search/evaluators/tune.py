"""The ``tune`` evaluator: train every candidate from scratch, then score it.

The honest, slow baseline against which weight sharing is judged: no proxy, no
shared weights, just a few epochs of SGD per architecture. Training is seeded per
architecture (run seed + architecture string), so the same architecture always gets
the same perfs and a resumed search repeats an uninterrupted one exactly.
"""
from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.run_section import OptimOptions
from hwnas.search.datasets.base import Dataset
from hwnas.search.evaluators.base import Evaluator
from hwnas.search.evaluators.predictor import fill
from hwnas.search.objectives import is_feasible
from hwnas.search.objectives.base import Objective
from hwnas.search.robust.train import RobustTrainOptions, make_perturb
from hwnas.search.rollout import Rollout
from hwnas.search.runtime import Runtime
from hwnas.search.spaces.base import SearchSpace
from hwnas.search.training import (
    PassStats,
    TrainingDiverged,
    first_batches,
    inputs_of,
    make_optimizer,
    make_scheduler,
    recalibrate_bn,
    train_pass,
)
from hwnas.search.weights.base import WeightsManager
from hwnas.search.weights.plain import arch_seed

log = logging.getLogger(__name__)


@register("evaluator", "tune")
class TuneEvaluator(Evaluator):
    """Train each candidate from scratch for a few epochs, then ask the objectives."""

    needs_candidates = True

    @dataclass(frozen=True)
    class Options(OptimOptions):
        epochs: int = opt(1, min=1, help="training epochs per candidate")
        batch_size: int = opt(64, min=1, help="training batch size")
        max_steps: int = opt(0, min=0, help="stop each epoch after this many batches (0 = whole split)")
        threads: int = opt(0, min=0, help="torch threads while training (0 = leave as is)")
        bn_recalibrate: int = opt(8, min=0, help="training batches used to re-estimate BatchNorm statistics "
                                                 "after training (0 = off); short runs leave them stale")
        robust: RobustTrainOptions = opt(RobustTrainOptions(), help="robust training: fault-aware (method faults) "
                                                                    "or adversarial (pgd, fast fgsm)")
        skip_infeasible: bool = opt(True, help="do not train candidates that already break a hardware "
                                               "constraint (their reward is the constraint's worst anyway)")

    def __init__(self, options: Any, *, space: SearchSpace, objective: Objective, dataset: Dataset | None = None,
                 weights_manager: WeightsManager | None = None, seed: int = 0, runtime: Runtime | None = None,
                 **_: Any) -> None:
        self.options = options
        self.runtime = runtime or Runtime.cpu()
        self.space = space
        self.objective = objective
        self.dataset = dataset
        self.weights_manager = weights_manager
        self.seed = int(seed)
        self._checked = False

    def _check(self) -> Dataset:
        if self.dataset is None:
            raise ConfigError("dataset: the tune evaluator trains candidates and needs a dataset section")
        if not self._checked:
            self.dataset.prepare()
            want = getattr(getattr(self.space, "options", None), "num_classes", None)
            if want is not None and self.dataset.num_classes != want:
                raise ConfigError(f"search_space.num_classes: {want} does not match the dataset's "
                                  f"{self.dataset.num_classes} classes")
            self._checked = True
        return self.dataset

    def _steps_per_epoch(self, dataset: Dataset) -> int:
        o = self.options
        n_batches = math.ceil(dataset.size("train") / o.batch_size)
        return min(n_batches, o.max_steps) if o.max_steps else n_batches

    def train(self, model: Any, seed: int) -> dict[str, float]:
        """Seeded training of one candidate in place; returns the last epoch's mean loss and time."""
        import torch

        o = self.options
        dataset = self._check()
        optimizer = make_optimizer(model.parameters(), o)
        scheduler = make_scheduler(optimizer, o, self._steps_per_epoch(dataset) * o.epochs)
        old_threads = torch.get_num_threads()
        if o.threads:
            torch.set_num_threads(o.threads)
        t0, stats, diverged = time.perf_counter(), PassStats([]), False
        perturb = make_perturb(o.robust, seed)
        try:
            for epoch in range(o.epochs):
                loader = dataset.loader("train", batch_size=o.batch_size, shuffle=True, seed=seed + epoch)
                stats = train_pass(model, itertools.islice(loader, o.max_steps or None), optimizer, o,
                                   scheduler=scheduler, runtime=self.runtime, perturb=perturb)
            if o.bn_recalibrate:
                calib = dataset.loader("train", batch_size=o.batch_size, shuffle=True, seed=seed + 7777)
                recalibrate_bn(model, inputs_of(first_batches(calib, o.bn_recalibrate)), runtime=self.runtime)
        except TrainingDiverged as exc:
            log.warning("candidate not trained to the end: %s", exc)
            diverged = True
        finally:
            if o.threads:
                torch.set_num_threads(old_threads)
        out = {"train_loss": stats.mean_loss if stats.seen else float("nan"), "train_s": time.perf_counter() - t0}
        if diverged:
            out["diverged"] = 1.0
        return out

    def _over_budget(self, rollouts: Sequence[Rollout]) -> list[bool]:
        """Which rollouts violate a constraint by their cheap (hardware) perfs alone."""
        cheap = getattr(self.objective, "cheap_perfs", None)
        if not self.options.skip_infeasible or not callable(cheap):
            return [False] * len(rollouts)
        out = []
        for r, p in zip(rollouts, cheap(rollouts)):
            out.append(not is_feasible(self.objective, p))
            if out[-1]:
                r.perfs.update(p)
                r.reward = float(self.objective.reward(r.perfs))
                r.info["skipped"] = "over budget"
        return out

    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        import torch

        skip = self._over_budget(rollouts)
        rollouts = [r for r, s in zip(rollouts, skip) if not s]
        candidates = []
        for r in rollouts:
            model = r.candidate
            if model is None:
                if self.weights_manager is None:
                    raise ConfigError("weights_manager: the tune evaluator needs candidates (use weights_manager plain)")
                model = r.candidate = self.weights_manager.assemble_candidate(r)
            model = r.candidate = self.runtime.model(model)
            seed = arch_seed(self.seed, self.space, r.arch)
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                stats = self.train(model, seed)
            r.info.update({k: round(v, 4) for k, v in stats.items()})
            log.info("trained %s in %.1fs (loss %.3f)", self.space.to_str(r.arch), stats["train_s"], stats["train_loss"])
            candidates.append(model)
        if rollouts:
            fill(self.objective, rollouts, candidates)
