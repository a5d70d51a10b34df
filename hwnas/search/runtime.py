"""Where and how training runs: device, mixed precision, memory format, determinism.

The ``run`` section of a config (and ``--device`` on the search / train / test /
eval-arch / sample commands) holds these run-level settings::

    run: {device: auto, amp: bf16, channels_last: false, cudnn_benchmark: false, deterministic: false}

Why one object: a model, its batches, its autocast region and its gradient scaler must
agree on the device, and every training path (tune, mepa, final training, DDP ranks)
goes through :mod:`hwnas.search.training` with a :class:`Runtime`, so they all agree.
``auto`` is CUDA when present; asking for CUDA where there is none is a one-line error,
never a silent fall back to the CPU.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, fields
from typing import Any, Iterator, Mapping

import torch

from hwnas.config import options_to_dict, parse_options
from hwnas.errors import ConfigError
from hwnas.run_section import DEVICE_RE, ExecOptions


def exec_options(run: ExecOptions | Mapping[str, Any] | None, device: str | None = None) -> ExecOptions:
    """The execution settings of a config's ``run`` section (a validated
    :class:`~hwnas.run_section.RunOptions`, or a plain mapping of them), with a
    command-line ``--device`` applied."""
    names = {f.name for f in fields(ExecOptions)}
    given = options_to_dict(run) if isinstance(run, ExecOptions) else dict(run or {})
    data = {k: v for k, v in given.items() if k in names}
    if device is not None:
        data["device"] = device
    return parse_options(ExecOptions, data, "run")


def resolve_device(spec: str) -> torch.device:
    """``auto|cpu|cuda|cuda:N`` -> a torch device that exists, or a one-line ConfigError."""
    if not DEVICE_RE.match(spec):
        raise ConfigError(f"--device: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available (torch {torch.__version__}"
                              f"{', CPU-only build' if torch.version.cuda is None else ', no GPU visible'}); "
                              "use --device cpu or auto")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"--device {spec}: only {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    return dev


@dataclass
class Runtime:
    """A resolved execution context: the device and the precision / layout rules, plus the
    process's place in a distributed run (``rank`` of ``world``; 0 of 1 when alone)."""

    device: torch.device
    amp: str = "off"
    channels_last: bool = False
    rank: int = 0
    world: int = 1
    scaler: Any = None

    @classmethod
    def from_options(cls, o: ExecOptions, *, device: torch.device | None = None, rank: int = 0,
                     world: int = 1) -> "Runtime":
        dev = device if device is not None else resolve_device(o.device)
        if o.amp == "fp16" and dev.type != "cuda":
            raise ConfigError("run.amp: fp16 needs a CUDA device (use bf16 on the CPU)")
        apply_flags(o, dev)
        rt = cls(dev, o.amp, o.channels_last, rank, world)
        if o.amp == "fp16":
            rt.scaler = torch.amp.GradScaler("cuda")
        return rt

    @classmethod
    def cpu(cls) -> "Runtime":
        return cls(torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self) -> Any:
        """The autocast region of a forward pass (a no-op without AMP)."""
        if self.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def model(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move ``module`` to the device (and the NHWC format when channels_last)."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return self.tensor(x), y.to(self.device, non_blocking=True)

    def map_location(self) -> str:
        """Where checkpoints load: tensors land on this device whatever device saved them."""
        return str(self.device)


def apply_flags(o: ExecOptions, device: torch.device) -> None:
    """Process-wide switches: cuDNN autotuning and deterministic algorithms."""
    torch.backends.cudnn.benchmark = bool(o.cudnn_benchmark)
    if o.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


@contextlib.contextmanager
def no_flags() -> Iterator[None]:
    """Restore the process-wide switches on exit (tests that turn them on)."""
    bench, det = torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = bench
        torch.use_deterministic_algorithms(det)


def runtime_for(run: ExecOptions | Mapping[str, Any] | None, device: str | None = None, **kwargs: Any) -> Runtime:
    """The Runtime of a config's ``run`` section and an optional ``--device``."""
    return Runtime.from_options(exec_options(run, device), **kwargs)
