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
from typing import Any, Callable, ContextManager, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError, HwnasError
from hwnas.run_section import OptimOptions
from hwnas.search.runtime import Runtime

Batch = tuple[torch.Tensor, torch.Tensor]
#: ``perturb(model, x, y)``: a context around one training step whose value is the input to train on.
Perturb = Callable[[nn.Module, torch.Tensor, torch.Tensor], ContextManager[torch.Tensor]]


class TrainingDiverged(HwnasError):
    """The loss became NaN or infinite (learning rate too high, no gradient clipping)."""


def make_optimizer(params: Iterable[Any], o: OptimOptions) -> torch.optim.Optimizer:
    """The optimiser the options describe, over trainable ``params``: parameters, or
    parameter groups (dicts whose own options, e.g. ``weight_decay``, override these)."""
    items = list(params)
    if items and isinstance(items[0], dict):
        params: list[Any] = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in items]
    else:
        params = [p for p in items if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.momentum > 0)


def resize_input(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """A batch of images at ``resolution`` x ``resolution`` (bilinear; unchanged when it is
    already that size): how an elastic-resolution supernet, and a teacher beside it, see
    one input size."""
    if tuple(x.shape[-2:]) == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


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


def clip_and_step(optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], grad_clip: float,
                  scaler: Any = None) -> None:
    """Clip the gradient norm (when ``grad_clip`` > 0), then take the optimiser step
    (through the fp16 gradient ``scaler`` when there is one: unscale, clip, step, update)."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(list(params), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


def backward(loss: torch.Tensor, rt: Runtime | None) -> None:
    """``loss.backward()``, scaled when fp16 needs it."""
    if rt is not None and rt.scaler is not None:
        rt.scaler.scale(loss).backward()
    else:
        loss.backward()


def all_reduce_sum(values: Sequence[float], rt: Runtime | None) -> list[float]:
    """Sums of ``values`` over the ranks of a distributed run (the values alone otherwise)."""
    if rt is None or not rt.distributed:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device(rt))
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def _comm_device(rt: Runtime) -> torch.device:
    """nccl reduces CUDA tensors only; gloo CPU tensors."""
    import torch.distributed as dist

    return rt.device if dist.get_backend() == "nccl" else torch.device("cpu")


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
               scheduler: Any = None, aux_weight: float = 0.0, runtime: Runtime | None = None,
               perturb: Perturb | None = None) -> PassStats:
    """One pass of SGD steps over ``batches`` (``itertools.islice`` them for fewer steps),
    on the runtime's device and precision (without a runtime: the batches as given, in
    fp32); under DDP the statistics are the global batch's.

    A model that returns ``(logits, aux_logits)`` in training (an auxiliary head) adds
    ``aux_weight`` times the auxiliary cross-entropy to the loss. ``perturb(model, x, y)``
    (robust training, :mod:`hwnas.search.robust.train`) is a context around each step's
    forward and backward whose value is the input to train on: adversarial inputs, or
    ``x`` itself while faults are injected into the model.
    """
    model.train()
    stats = PassStats([])
    scaler = runtime.scaler if runtime is not None else None
    for i, batch in enumerate(batches):
        x, y = runtime.batch(batch) if runtime is not None else batch
        optimizer.zero_grad(set_to_none=True)
        with perturb(model, x, y) if perturb is not None else contextlib.nullcontext(x) as x_in:
            with runtime.autocast() if runtime is not None else contextlib.nullcontext():
                logits = model(x_in)
            aux = None
            if isinstance(logits, tuple):
                logits, aux = logits
            loss = F.cross_entropy(logits.float(), y, label_smoothing=o.label_smoothing)
            if aux is not None and aux_weight:
                loss = loss + aux_weight * F.cross_entropy(aux.float(), y, label_smoothing=o.label_smoothing)
            backward(loss, runtime)
        clip_and_step(optimizer, model.parameters(), o.grad_clip, scaler)
        if scheduler is not None:
            scheduler.step()
        loss_v = float(loss.detach())
        if not math.isfinite(loss_v) and scaler is None:  # fp16: the scaler skips such steps
            raise TrainingDiverged(f"training diverged: loss is {loss_v} at step {i + 1} (lower lr, "
                                   "or set grad_clip)")
        stats.losses.append(loss_v)
        stats.seen += len(y)
        stats.correct += int((logits.detach().argmax(1) == y).sum())
    return _reduce_stats(stats, runtime)


def _reduce_stats(stats: PassStats, rt: Runtime | None) -> PassStats:
    """Per-step losses averaged over ranks; examples and hits summed (one all-reduce)."""
    if rt is None or not rt.distributed:
        return stats
    sums = all_reduce_sum([*stats.losses, stats.seen, stats.correct], rt)
    n = len(stats.losses)
    return PassStats([v / rt.world for v in sums[:n]], int(sums[n]), int(sums[n + 1]))


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], *, device: torch.device | str | None = None,
             split: str = "valid", runtime: Runtime | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` in eval mode over ``batches`` (each
    rank's shard under DDP: the sums are all-reduced). The modules' train/eval modes are
    restored afterwards: a candidate shares modules with a supernet that keeps training."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    correct, loss, n = 0, 0.0, 0
    try:
        for batch in batches:
            x, y = runtime.batch(batch) if runtime is not None else to_device(batch, device)
            with runtime.autocast() if runtime is not None else contextlib.nullcontext():
                logits = model(x)
            loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    finally:
        for m, mode in modes:
            m.training = mode
    correct, loss, n = all_reduce_sum([correct, loss, n], runtime)
    if n == 0:
        raise ConfigError(f"dataset: the {split} split is empty")
    return {"accuracy": correct / n, "loss": loss / n, "n": float(n)}  # type: ignore[operator]


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: Iterable[torch.Tensor], *, owner: nn.Module | None = None,
                   device: torch.device | str | None = None, runtime: Runtime | None = None) -> None:
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
            if runtime is not None:
                with runtime.autocast():
                    model(runtime.tensor(x))
            else:
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
