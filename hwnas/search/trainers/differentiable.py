"""The ``differentiable`` trainer: one-shot gradient-based search (DARTS, PC-DARTS, GDAS,
SNAS, FBNet), alternating architecture and weight steps, then the derivation.

Why a trainer of its own rather than the ``simple`` loop with an evaluator: a
differentiable search does not score independent rollouts; it trains one
distribution jointly with the supernet's weights, batch by batch, over epochs with
schedules (weight learning rate, Gumbel temperature, warm-up epochs without
architecture steps). Each step:

1. architecture step - the controller's :meth:`update` with the loss of a rollout's
   candidate on a held-out batch (``valid`` split; SNAS' single-level search uses the
   training batch) through the objective's ``arch_loss`` (e.g. the FBNet latency loss);
   second-order DARTS moves the weights and back inside it;
2. weight step - one SGD step of the supernet on the training batch, with the
   architecture weights of a fresh (detached) sample, through the training core's
   :func:`~hwnas.search.training.train_pass` (the same step every other loop takes).

After each epoch it records the derived architecture, the entropy of the distribution,
the temperature, the derived subnet's accuracy with the shared weights (BN recalibrated)
and any hardware perfs, and checkpoints. Every random stream is seeded by (seed, epoch)
or saved, so a resumed search repeats an uninterrupted one. ``genotype.yaml`` holds the
final derivation (architecture string, YAML form and the weights); ``hwnas derive``
reads it back from the checkpoint.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.run_section import OptimOptions
from hwnas.search import report
from hwnas.search.build import SearchComponents
from hwnas.search.controllers.differentiable import ArchStep
from hwnas.search.evaluators.mepa import score_with_recalibrated_bn
from hwnas.search.rollout import Rollout
from hwnas.search.tensorboard import open_run_log
from hwnas.search.trainers.base import Trainer
from hwnas.search.trainers.checkpoint import load_checkpoint, save_checkpoint
from hwnas.search.trainers.simple import config_hash
from hwnas.search.training import (
    Batch,
    first_batches,
    inputs_of,
    make_optimizer,
    make_scheduler,
    train_pass,
)

log = logging.getLogger(__name__)


def nproc_refusal(nproc: int, trainer: str = "differentiable") -> str:
    """The one-line refusal of a multi-process search by a one-process trainer (exit 2)."""
    return (f"--nproc {nproc}: the {trainer} trainer runs in one process (its architecture steps and "
            "run directory are not split over ranks); leave --nproc out and torchrun off")


@register("trainer", "differentiable")
class DifferentiableTrainer(Trainer):
    """Alternate architecture and weight steps over epochs (DARTS and relatives), then derive."""


    needs_evaluator = False
    #: One process only (``hwnas search --nproc N`` and torchrun are refused): the
    #: architecture steps, the Gumbel draws and the run directory are not split over ranks.
    supports_nproc = False
    #: What the summary's ``steps`` counts, and the option that interrupts a run part-way
    #: (the trainer contract suite stops half-way and resumes).
    steps_option = "epochs"
    interrupt_option = "stop_after"

    @dataclass(frozen=True)
    class Options(OptimOptions):
        lr: float = opt(0.025, gt=0, help="peak learning rate of the supernet weights")
        lr_min: float = opt(0.001, min=0.0, help="learning rate the cosine schedule ends at")
        weight_decay: float = opt(3e-4, min=0.0, help="L2 weight decay of the supernet weights")
        grad_clip: float = opt(5.0, min=0.0, help="gradient-norm clip of the weight steps (0 = off)")
        epochs: int = opt(50, min=1, help="search epochs")
        batch_size: int = opt(64, min=1, help="batch size of both steps")
        steps_per_epoch: int = opt(0, min=0, help="steps per epoch (0 = one pass over the train split)")
        warmup_epochs: int = opt(0, min=0, help="epochs of weight steps only before architecture steps start")
        arch_split: Literal["valid", "train"] = opt(
            "valid", help="split of the architecture steps' batches (train: single-level, as SNAS)")
        eval_batches: int = opt(2, min=0, help="valid batches the derived subnet is scored on after each epoch")
        calib_batches: int = opt(2, min=0, help="train batches that recalibrate BN before that scoring")
        checkpoint_every: int = opt(1, min=0, help="checkpoint every N epochs (0 = only at the end)")
        stop_after: int = opt(0, min=0, help="end this invocation after N epochs (0 = run to the end); the run "
                                             "stays resumable, so time-boxed jobs continue where they stopped")

    def __init__(self, options: Any, *, components: SearchComponents, run_dir: Path | None = None, seed: int = 0,
                 **_: Any) -> None:
        self.options = o = options
        self.c = components
        self.seed = int(seed)
        ctrl, wm = components.controller, components.weights_manager
        if ctrl is None or not callable(getattr(ctrl, "update", None)):
            raise ConfigError(f"controller.type: the differentiable trainer needs a differentiable controller, got "
                              f"{getattr(ctrl, 'registry_name', None)!r}")
        if components.dataset is None:
            raise ConfigError("dataset: a differentiable search trains a supernet and needs a dataset section")
        rt = getattr(components, "runtime", None)
        if rt is not None and rt.distributed:
            raise ConfigError(nproc_refusal(rt.world))
        self.module = wm.module  # type: ignore[union-attr]
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.dataset = components.dataset.prepare()
        n_batches = len(self.dataset.loader("train", batch_size=o.batch_size, shuffle=False))
        self.steps = min(n_batches, o.steps_per_epoch) if o.steps_per_epoch else n_batches
        self.optimizer = make_optimizer(self.module.parameters(), o)
        self.scheduler = make_scheduler(self.optimizer, o, o.epochs * self.steps)
        self.epoch = 0
        self.history: list[Rollout] = []

    # -- one step ---------------------------------------------------------------------------
    def _loss(self, r: Rollout, batch: Batch, arch: bool) -> torch.Tensor:
        x, y = batch
        ce = F.cross_entropy(self.c.weights_manager.assemble_candidate(r)(x), y)  # type: ignore[union-attr]
        arch_loss = getattr(self.c.objective, "arch_loss", None)
        return arch_loss(ce, r) if arch and callable(arch_loss) else ce

    def _step(self, batch: Batch, valid: Iterator[Batch], arch_on: bool) -> tuple[float, float]:
        ctrl = self.c.controller
        arch_loss = float("nan")
        if arch_on:
            batches = {"train": batch, "valid": batch if self.options.arch_split == "train" else next(valid)}
            ctx = ArchStep(lambda r, split: self._loss(r, batches[split], split == "valid"),
                           list(self.module.parameters()), float(self.optimizer.param_groups[0]["lr"]),
                           self.options.weight_decay)
            arch_loss = ctrl.update(ctx)["arch_loss"]  # type: ignore[union-attr]
        r = ctrl.sample(1)[0]  # type: ignore[union-attr]
        r.arch_weights = r.arch_weights.detached()
        cand = self.c.weights_manager.assemble_candidate(r)  # type: ignore[union-attr]
        stats = train_pass(cand, [batch], self.optimizer, self.options, scheduler=self.scheduler)
        return stats.mean_loss, arch_loss

    def _valid_stream(self) -> Iterator[Batch]:
        """Endless valid batches, reshuffled per pass (seeded by seed, epoch and pass)."""
        k = 0
        while True:
            seed = (self.seed * 1_000_003 + self.epoch) * 1000 + k
            yield from self.dataset.loader("valid", batch_size=self.options.batch_size, shuffle=True, seed=seed)
            k += 1

    # -- one epoch --------------------------------------------------------------------------
    def run_epoch(self) -> Rollout:
        o, ctrl = self.options, self.c.controller
        ctrl.on_epoch(self.epoch, o.epochs)  # type: ignore[union-attr]
        torch.manual_seed(self.seed * 100_003 + self.epoch)
        train = self.dataset.loader("train", batch_size=o.batch_size, shuffle=True,
                                    seed=self.seed * 1_000_003 + self.epoch)
        valid = self._valid_stream()
        arch_on = self.epoch >= o.warmup_epochs
        if arch_on and o.arch_split == "valid" and self.dataset.size("valid") == 0:
            raise ConfigError("dataset.valid_fraction: architecture steps use the valid split, which is empty")
        w_losses, a_losses = [], []
        for i, batch in enumerate(train):
            if i >= self.steps:
                break
            w, a = self._step(batch, valid, arch_on)
            w_losses.append(w)
            a_losses.append(a)
        rec = self._record(float(np.mean(w_losses)), float(np.mean(a_losses)) if arch_on else float("nan"))
        self.epoch += 1
        self.history.append(rec)
        return rec

    def _record(self, weight_loss: float, arch_loss: float) -> Rollout:
        ctrl, o = self.c.controller, self.options
        r = Rollout(ctrl.derive(), step=self.epoch)  # type: ignore[union-attr]
        r.perfs = {"entropy": ctrl.entropy(), "tau": float(ctrl.tau), "train_loss": weight_loss}  # type: ignore
        if math.isfinite(arch_loss):
            r.perfs["arch_loss"] = arch_loss
        if o.eval_batches:
            held = first_batches(self.dataset.loader("valid", batch_size=o.batch_size, shuffle=False), o.eval_batches)
            calib = inputs_of(first_batches(self.dataset.loader("train", batch_size=o.batch_size, shuffle=True,
                                                                seed=self.seed + 17), o.calib_batches))
            if held:
                r.perfs.update(self._score(r.arch, held, calib))
        cheap = getattr(self.c.objective, "cheap_perfs", None)
        if callable(cheap):
            r.perfs.update(cheap([r])[0])
        expected = getattr(self.c.objective, "expected", None)
        if callable(expected):
            with torch.no_grad():
                r.perfs["expected_" + self.c.objective.perf_names[0]] = float(expected(ctrl.sample(1)[0]))  # type: ignore
        r.reward = r.perfs.get("accuracy", -weight_loss)
        log.info("epoch %d: %s  %s", self.epoch + 1, self.c.space.to_str(r.arch),
                 {k: round(v, 4) for k, v in r.perfs.items()})
        return r

    def _score(self, arch: Any, held: list[Batch], calib: list[torch.Tensor]) -> dict[str, float]:
        """Accuracy of the supernet under the current distribution (``supernet_accuracy``:
        the mixture DARTS trains; GDAS' most likely path) and of the derived subnet with the
        shared weights (``accuracy``; the gap between the two is the discretisation gap),
        each with BN statistics recalibrated on its own forward: the running averages mix
        every path and mixture the search ran."""
        wm, ctrl = self.c.weights_manager, self.c.controller
        with torch.no_grad():
            mixed = Rollout(arch, arch_weights=ctrl.eval_weights().detached())  # type: ignore[union-attr]
        sup = score_with_recalibrated_bn(wm.assemble_candidate(mixed), self.module, calib, held)  # type: ignore
        out = {"supernet_accuracy": sup["accuracy"]}
        cand = wm.assemble_candidate(Rollout(arch))  # type: ignore[union-attr]
        out.update(score_with_recalibrated_bn(cand, self.module, calib, held))
        return out

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"kind": "differentiable", "epoch": self.epoch, "config_hash": config_hash(self.c.config),
                "history": [r.to_dict(self.c.space) for r in self.history],
                "controller": self.c.controller.state_dict(),  # type: ignore[union-attr]
                "weights_manager": self.c.weights_manager.state_dict(),  # type: ignore[union-attr]
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "derived": self.derived()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != "differentiable" or state.get("config_hash") != config_hash(self.c.config):
            raise ConfigError(f"{self.run_dir}: holds a search with a different config; choose another run "
                              "directory or restart the search")
        # Check the history (named by file and row) and the epoch before anything is loaded.
        history = report.history_of(state, self.run_dir or Path("."), self.c.space)
        epoch = state.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"{(self.run_dir or Path('.')) / 'checkpoint.json'}: damaged checkpoint "
                              f"(epoch: expected an integer >= 0, got {epoch!r})")
        self.c.controller.load_state_dict(state["controller"])  # type: ignore[union-attr]
        self.c.weights_manager.load_state_dict(state["weights_manager"])  # type: ignore[union-attr]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = history
        self.epoch = epoch

    def derived(self) -> dict[str, Any]:
        """The current derivation as ``hwnas derive`` writes it (with the weights)."""
        ctrl = self.c.controller
        last = self.history[-1] if self.history else Rollout(ctrl.derive())  # type: ignore[union-attr]
        rec = report.arch_record(Rollout(ctrl.derive(), dict(last.perfs), last.reward, self.epoch), self.c.space)
        return {**rec, "space": self.c.space.name, "alphas": ctrl.alphas_jsonable()}  # type: ignore[union-attr]

    def checkpoint(self) -> None:
        if self.run_dir is not None:
            save_checkpoint(self.run_dir, self.state_dict(), self.epoch)
            report.write_rollouts_csv(self.run_dir / "rollouts.csv", self.history, self.c.space)

    # -- run --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        import yaml

        t0 = time.perf_counter()
        resumed_at = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.c.config.to_dict(), sort_keys=False))
            state = load_checkpoint(self.run_dir)
            if state is not None:
                self.load_state_dict(state)
                resumed_at = self.epoch
        every, stop = self.options.checkpoint_every, self.options.stop_after
        end = self.options.epochs if not stop else min(self.options.epochs, self.epoch + stop)
        tb = open_run_log(self.run_dir, self.c.config, self.epoch)
        while self.epoch < end:
            rec = self.run_epoch()
            if tb is not None:  # loss, lr, accuracy, hardware perfs, entropy and every edge's alpha
                tb.scalars(self.epoch, {**rec.perfs, "reward": rec.reward,
                                        "lr": self.optimizer.param_groups[0]["lr"]}, prefix="epoch/")
                with torch.no_grad():
                    tb.alphas(self.epoch, self.c.controller.probabilities())  # type: ignore[union-attr]
            if every and self.epoch % every == 0:
                self.checkpoint()
        self.checkpoint()
        out = self.finish(time.perf_counter() - t0, resumed_at)
        if tb is not None:
            tb.hparams({"reward": self.history[-1].reward if self.history else None,
                        **(self.history[-1].perfs if self.history else {})})
            tb.close()
        return out

    def finish(self, seconds: float, resumed_at: int | None) -> dict[str, Any]:
        best = self.derived()
        out: dict[str, Any] = {"steps": self.epoch, "rollouts": len(self.history), "seconds": round(seconds, 3),
                               "feasible": len(self.history), "resumed_at": resumed_at,
                               "best": {k: v for k, v in best.items() if k != "alphas"}, "pareto": [],
                               "entropy": [r.perfs.get("entropy") for r in self.history]}
        out["pareto"] = [out["best"]]
        if self.run_dir is not None:
            report.write_yaml(self.run_dir / "genotype.yaml", best)
            report.write_yaml(self.run_dir / "summary.yaml", {k: v for k, v in out.items() if k != "pareto"})
            out["run_dir"] = str(self.run_dir)
        return out
