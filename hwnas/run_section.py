"""The ``run:`` section of a run config: where and how a run executes, its folder, and the
final-training recipe, typed like every component section.

Why here, beside :mod:`hwnas.config` and below the search engine: the loader validates
the whole file when it is read — an unknown key under ``run:`` is refused with a "did you
mean" and its YAML path (``run.trian: unknown option (did you mean 'train'?)``), a wrong
type or value names ``run.train.epochs`` — so a typo fails at once, not hours later when
final training starts. The search engine reads these same frozen dataclasses
(:mod:`hwnas.search.runtime` the execution settings, :mod:`hwnas.search.training` the
optimiser, :mod:`hwnas.search.final` the recipe)::

    run:
      device: auto            # auto | cpu | cuda | cuda:N (--device overrides)
      amp: bf16               # off | bf16 | fp16
      dir: runs/my-search     # the run folder (default runs/<config name>)
      tensorboard: true       # event files in RUN_DIR/tensorboard (pip install 'hwnas[tensorboard]')
      train: {epochs: 600, batch_size: 96, lr: 0.025, auxiliary_weight: 0.4}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hwnas.errors import ConfigError
from hwnas.options import opt

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class ExecOptions:
    """Run-level execution settings (keys of the ``run`` section)."""

    device: str = opt("auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    amp: Literal["off", "bf16", "fp16"] = opt("off", help="mixed precision: bf16 autocast (CPU or CUDA), or fp16 "
                                                          "autocast with a gradient scaler (CUDA)")
    channels_last: bool = opt(False, help="NHWC memory format for models and batches (faster convs on GPUs)")
    cudnn_benchmark: bool = opt(False, help="let cuDNN pick the fastest kernels per shape (not bitwise repeatable)")
    deterministic: bool = opt(False, help="deterministic algorithms only (bitwise repeatable on GPU, slower)")

    def check(self) -> None:
        if not DEVICE_RE.match(self.device):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.deterministic and self.cudnn_benchmark:
            raise ConfigError("cudnn_benchmark: cannot be on with deterministic: true")


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


@dataclass(frozen=True)
class TrainOptions(OptimOptions):
    """The final-training recipe (YAML section ``run.train``; CLI flags override)."""

    weight_decay: float = opt(5e-4, min=0, help="L2 weight decay")
    label_smoothing: float = opt(0.1, min=0, lt=1, help="label smoothing of the cross-entropy loss")
    grad_clip: float = opt(5.0, min=0, help="gradient-norm clip (0 = off)")
    schedule: Literal["cosine", "constant"] = opt("cosine", help="cosine decay to 0 per step, or constant")
    epochs: int = opt(30, min=1, help="training epochs")
    batch_size: int = opt(64, min=1, help="training batch size")
    warmup_epochs: int = opt(0, min=0, help="linear warm-up epochs before the cosine decay")
    eval_batch_size: int = opt(256, min=1, help="batch size for validation and test")
    auxiliary_weight: float = opt(0.0, min=0, help="weight of the auxiliary head's loss (DARTS: 0.4; 0 = no head; "
                                                   "cell spaces)")
    drop_path: float = opt(0.0, min=0, lt=1, help="drop-path probability reached at the last epoch, rising "
                                                  "linearly from 0 (DARTS: 0.2; cell spaces)")
    space: dict[str, Any] = opt({}, help="search-space options that differ for the final network, e.g. "
                                         "{cells: 20, channels: 36} after a DARTS search at 8 x 16")
    dataset: dict[str, Any] = opt({}, help="dataset options that differ for final training, e.g. "
                                           "{valid_fraction: 0} to train on the whole training split")


@dataclass(frozen=True)
class RunOptions(ExecOptions):
    """The whole ``run`` section: the execution settings, the run folder and ``train``."""

    dir: Path | None = opt(None, help="run folder of `hwnas search` (default runs/<config name>); relative to the "
                                      "YAML file")
    tensorboard: bool = opt(True, help="write TensorBoard event files into RUN_DIR/tensorboard (needs the "
                                       "tensorboard extra; without it nothing is written)")
    train: TrainOptions = field(default_factory=TrainOptions,
                                metadata={"help": "the final-training recipe of `hwnas train` (CLI flags override)"})


__all__ = ["DEVICE_RE", "ExecOptions", "OptimOptions", "RunOptions", "TrainOptions"]
