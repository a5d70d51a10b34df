"""The one train / evaluate core: optimiser and schedule options, a training pass,
evaluation, BatchNorm recalibration.

Why one module: train-from-scratch evaluation (``tune``), shared-weight training
(``mepa``), final training (``hwnas train``) and every later trainer (differentiable,
distributed) must agree on what "an SGD step with cosine decay", "accuracy" and
"recalibrated BatchNorm" mean, or their numbers do not compare. Each component's
``Options`` derives from :class:`OptimOptions` and only changes defaults.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.config import opt
from hwnas.errors import ConfigError, HwnasError

Batch = tuple[torch.Tensor, torch.Tensor]


class TrainingDiverged(HwnasError):
    """The loss became NaN or infinite (learning rate too high, no gradient clipping)."""


@dataclass(frozen=True)
class OptimOptions:
    """Optimiser and schedule options shared by every training loop (YAML fields)."""

    optimizer: Literal["sgd", "adam"] = opt("sgd", help="sgd (Nesterov momentum when momentum > 0) or adam")
    lr: float = opt(0.05, gt=0, help="peak learning rate")
    momentum: float = opt(0.9, min=0.0, lt=1.0, help="SGD momentum")
    weight_decay: float = opt(4e-5, min=0.0, help="L2 weight decay")
    schedule: Literal["cosine", "constant"] = opt("cosine", help="cosine decay to 0 over the run, or constant")
    warmup_steps: int = opt(0, min=0, help="linear warm-up steps before the schedule")
    grad_clip: float = opt(0.0, min=0.0, help="gradient-norm clip (0 = off)")
    label_smoothing: float = opt(0.0, min=0.0, lt=1.0, help="label smoothing of the cross-entropy loss")
    lr_min: float = opt(0.0, min=0.0, help="learning rate the cosine schedule ends at (DARTS: 0.001)")


def make_optimizer(params: Iterable[nn.Parameter], o: OptimOptions) -> torch.optim.Optimizer:
    """The optimiser the options describe, over trainable ``params``."""
    params = [p for p in params if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.momentum > 0)


def lr_factor(step: int, total: int, warmup: int, schedule: str = "cosine", floor: float = 0.0) -> float:
    """Multiplier of the peak rate at ``step``: linear warm-up, then cosine decay to
    ``floor`` at ``total`` (or constant)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = (step - warmup) / max(1, total - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def make_scheduler(optimizer: torch.optim.Optimizer, o: OptimOptions, total_steps: int,
                   warmup_steps: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` for :func:`lr_factor` (its state goes into checkpoints)."""
    warm = o.warmup_steps if warmup_steps is None else warmup_steps
    total = max(1, int(total_steps))
    floor = min(1.0, o.lr_min / o.lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warm, o.schedule, floor))


def to_device(batch: Batch, device: torch.device | str | None) -> Batch:
    """Move a batch (non-blocking from pinned memory) where the model lives."""
    if device is None:
        return batch
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def clip_and_step(optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], grad_clip: float) -> None:
    """Clip the gradient norm (when ``grad_clip`` > 0), then take the optimiser step."""
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(list(params), grad_clip)
    optimizer.step()


@dataclass
class PassStats:
    """What one training pass saw: per-step losses, examples and correct predictions."""

    losses: list[float]
    seen: int = 0
    correct: int = 0

    @property
    def mean_loss(self) -> float:
        return sum(self.losses) / max(1, len(self.losses))


def train_pass(model: nn.Module, batches: Iterable[Batch], optimizer: torch.optim.Optimizer, o: OptimOptions, *,
               scheduler: Any = None, max_steps: int = 0, device: torch.device | str | None = None,
               forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
               aux_weight: float = 0.0) -> PassStats:
    """One pass of SGD steps over ``batches`` (at most ``max_steps``; 0 = all).

    A model that returns ``(logits, aux_logits)`` in training (an auxiliary head) adds
    ``aux_weight`` times the auxiliary cross-entropy to the loss.
    """
    model.train()
    stats = PassStats([])
    fwd = forward or (lambda m, x: m(x))
    for i, batch in enumerate(batches):
        if max_steps and i >= max_steps:
            break
        x, y = to_device(batch, device)
        optimizer.zero_grad(set_to_none=True)
        logits = fwd(model, x)
        aux = None
        if isinstance(logits, tuple):
            logits, aux = logits
        loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
        if aux is not None and aux_weight:
            loss = loss + aux_weight * F.cross_entropy(aux, y, label_smoothing=o.label_smoothing)
        loss.backward()
        clip_and_step(optimizer, model.parameters(), o.grad_clip)
        if scheduler is not None:
            scheduler.step()
        loss_v = float(loss.detach())
        if not math.isfinite(loss_v):
            raise TrainingDiverged(f"training diverged: loss is {loss_v} at step {i + 1} (lower lr, "
                                   "or set grad_clip)")
        stats.losses.append(loss_v)
        stats.seen += len(y)
        stats.correct += int((logits.detach().argmax(1) == y).sum())
    return stats


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], *, device: torch.device | str | None = None,
             split: str = "valid") -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` in eval mode over ``batches``."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for batch in batches:
        x, y = to_device(batch, device)
        logits = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    if n == 0:
        raise ConfigError(f"dataset: the {split} split is empty")
    return {"accuracy": correct / n, "loss": loss / n, "n": float(n)}


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: Iterable[torch.Tensor], *, owner: nn.Module | None = None,
                   device: torch.device | str | None = None) -> None:
    """Re-estimate BatchNorm running statistics as a cumulative average over ``inputs``
    (what ``torch.optim.swa_utils.update_bn`` does), for the BN layers of ``owner``
    (default ``model``) — a supernet's subnet shares its owner's layers.

    After a few hundred steps the running averages still mix statistics of early, very
    different weights; eval-mode accuracy then drops far below what the network learned.
    """
    bns = batchnorms(owner if owner is not None else model)
    inputs = list(inputs)
    if not bns or not inputs:  # no calibration data: keep the statistics (resetting them would zero them)
        return
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    try:
        for x in inputs:
            model(x.to(device) if device is not None else x)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)


@contextlib.contextmanager
def preserved_buffers(module: nn.Module) -> Iterator[None]:
    """Restore every buffer (BN statistics) and the train/eval flag of ``module`` on exit,
    so scoring a subnet never changes the shared weights' state."""
    saved = {k: v.clone() for k, v in module.named_buffers()}
    was_training = module.training
    try:
        yield
    finally:
        bufs = dict(module.named_buffers())
        with torch.no_grad():
            for k, v in saved.items():
                bufs[k].copy_(v)
        module.train(was_training)


def first_batches(loader: Iterable[Batch], n: int) -> list[Batch]:
    """The first ``n`` batches of a loader (fixed calibration / scoring sets)."""
    out: list[Batch] = []
    for i, b in enumerate(loader):
        if i >= n:
            break
        out.append(b)
    return out


def inputs_of(batches: Sequence[Batch]) -> list[torch.Tensor]:
    return [x for x, _ in batches]
