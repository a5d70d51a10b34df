"""Hardware fault models: bit flips and stuck-at bits in weights and feature maps.

Why at the bit level and in a stored number format: an edge accelerator keeps weights
and activations in memory as float32 words or 8-bit integers, and a soft error (a particle
strike, a worn SRAM cell) corrupts *bits* of those words. The damage a flip does depends
on the format: a flip of a float32 exponent bit turns 0.1 into 1e37, the same flip in an
int8 word moves the value by at most 128 quantisation steps. So a fault model names the
``format``, the ``kind`` (``bitflip``, ``stuck_at_0``, ``stuck_at_1``) and the per-bit
``rate`` (globally, or per layer by a glob of module names), and the injector applies it:

* ``target: weights`` — the weights of the chosen module kinds are corrupted in place
  when the injector is entered and restored on exit (so a forward *and* backward pass
  see the same faulty weights, and the optimiser then updates the clean ones: FTT-NAS'
  fault-aware training);
* ``target: features`` — forward hooks corrupt each output of the chosen modules, a new
  draw on every call, with a straight-through gradient.

``int8`` is symmetric per-tensor quantisation (scale = max|x| / 127): a hit element takes
the value of its corrupted integer word; the others keep their float value (so rate 0 is
the float network, not its quantised copy). Every draw is seeded,
so a fault evaluation repeats exactly.
"""
from __future__ import annotations

import contextlib
import fnmatch
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.options import opt, parse_options

#: Bits per stored word of each format.
BITS: dict[str, int] = {"float32": 32, "int8": 8}

#: Module kinds a fault model can hit, by the torch classes they stand for.
KINDS: dict[str, tuple[type, ...]] = {
    "conv": (nn.modules.conv._ConvNd,),
    "linear": (nn.Linear,),
    "bn": (nn.modules.batchnorm._BatchNorm,),
    "act": (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh,
            nn.LeakyReLU),
    "pool": (nn.modules.pooling._AvgPoolNd, nn.modules.pooling._MaxPoolNd,
             nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd),
}


def _check_rate(path: str, rate: Any) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
        raise ConfigError(f"{path}: a fault rate is a probability per bit in [0, 1], got {rate!r}")


@dataclass(frozen=True)
class FaultOptions:
    """One fault model (one item of a ``faults:`` list)."""

    target: Literal["weights", "features"] = opt("weights", help="weights (stored parameters) or features "
                                                                  "(outputs of the chosen modules)")
    kind: Literal["bitflip", "stuck_at_0", "stuck_at_1"] = opt("bitflip", help="random bit flips, or bits "
                                                                               "stuck at 0 / at 1")
    rate: float = opt(1e-3, min=0.0, max=1.0, help="probability that each stored bit is faulty")
    format: Literal["float32", "int8"] = opt("int8", help="stored number format: float32 words, or symmetric "
                                                          "per-tensor 8-bit quantisation")
    modules: list[str] = opt(["conv", "linear"], min_items=1, unique=True,
                             help=f"module kinds hit: {', '.join(KINDS)}")
    layers: dict[str, float] = opt({}, help="per-layer rates: glob of module name (e.g. 'cells.0.*') -> rate; "
                                            "the first match wins, other modules get `rate`")

    def __post_init__(self) -> None:
        self.check()  # built in Python too, not only from YAML

    def check(self) -> None:
        _check_rate("rate", self.rate)
        for name, rate in self.layers.items():
            _check_rate(f"layers.{name}", rate)
        bad = [m for m in self.modules if m not in KINDS]
        if bad:
            raise ConfigError(f"modules: unknown module kind {bad[0]!r}; kinds: {', '.join(KINDS)}")
        if self.target == "weights" and set(self.modules) <= {"act", "pool"}:
            raise ConfigError("modules: activations and pooling hold no weights; pick conv, linear or bn")

    def rate_of(self, module_name: str) -> float:
        """The per-bit rate of the module named ``module_name``."""
        for pattern, rate in self.layers.items():
            if fnmatch.fnmatchcase(module_name, pattern):
                return float(rate)
        return float(self.rate)


def parse_faults(items: Any, path: str = "faults") -> list[FaultOptions]:
    """Fault models from a YAML list of mappings (already-built options pass through)."""
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{path}: expected a list of fault models ({{target: weights, rate: 0.001}}), "
                          f"got {items!r}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, FaultOptions):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(parse_options(FaultOptions, item, f"{path}[{i}]"))
        else:
            raise ConfigError(f"{path}[{i}]: expected a mapping (target, kind, rate, format, ...), got {item!r}")
    return out


# -- bits ---------------------------------------------------------------------------------
def _bit_mask(numel: int, bits: int, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices of the hit elements and, per element, the mask of its faulty bits (each bit
    of each element faulty with probability ``rate``); None when no bit is hit."""
    total = numel * bits
    k = int(rng.binomial(total, rate)) if rate < 1.0 else total
    if k == 0:
        return None
    pos = np.arange(total) if k == total else rng.choice(total, size=k, replace=False)
    elems, bit = np.divmod(pos, bits)
    masks = np.zeros(numel, dtype=np.int64)
    np.bitwise_or.at(masks, elems, np.left_shift(np.int64(1), bit.astype(np.int64)))
    hit = np.flatnonzero(masks)
    return hit, masks[hit]


def _apply(words: torch.Tensor, masks: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "bitflip":
        return words ^ masks
    if kind == "stuck_at_1":
        return words | masks
    return words & ~masks


def _signed(masks: np.ndarray, bits: int) -> np.ndarray:
    """Masks as the two's-complement values of a ``bits``-wide signed word."""
    return np.where(masks >= 1 << (bits - 1), masks - (1 << bits), masks)


def corrupt(t: torch.Tensor, *, kind: str, rate: float, fmt: str, rng: np.random.Generator) -> torch.Tensor:
    """A copy of ``t`` with the faults one draw of ``rng`` puts in its stored words."""
    bits = BITS[fmt]
    flat = t.detach().reshape(-1)
    drawn = _bit_mask(flat.numel(), bits, rate, rng)
    if drawn is None:
        return t.detach().clone()
    hit_np, masks_np = drawn
    hit = torch.from_numpy(hit_np).to(flat.device)
    out = flat.clone()
    if fmt == "float32":
        words = flat[hit].float().view(torch.int32)
        masks = torch.from_numpy(_signed(masks_np, 32)).to(torch.int32).to(flat.device)
        out[hit] = _apply(words, masks, kind).view(torch.float32).to(flat.dtype)
    else:
        scale = float(flat.abs().max()) / 127.0
        if scale == 0.0 or not np.isfinite(scale):
            scale = 1.0 if scale == 0.0 else scale
        q = torch.round(flat[hit].float() / scale).clamp(-127, 127).to(torch.int8)
        masks = torch.from_numpy(_signed(masks_np, 8)).to(torch.int8).to(flat.device)
        out[hit] = (_apply(q, masks, kind).float() * scale).to(flat.dtype)
    return out.view_as(t)


# -- injection ----------------------------------------------------------------------------
def targets(model: nn.Module, fault: FaultOptions) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs a fault model hits, in the model's module order."""
    kinds = tuple(c for m in fault.modules for c in KINDS[m])
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def _feature_hook(fault: FaultOptions, rate: float, rng: np.random.Generator) -> Any:
    def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
        if not isinstance(output, torch.Tensor) or not output.is_floating_point() or rate == 0.0:
            return output
        bad = corrupt(output, kind=fault.kind, rate=rate, fmt=fault.format, rng=rng)
        return output + (bad - output).detach()  # straight-through: training sees the faults, grads flow
    return hook


@contextlib.contextmanager
def inject(model: nn.Module, faults: Sequence[FaultOptions], seed: int) -> Iterator[nn.Module]:
    """Within the block ``model`` runs with one seeded draw of ``faults``: weights
    corrupted in place (restored on exit, also after an error), feature maps corrupted by
    forward hooks (removed on exit)."""
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    handles: list[Any] = []
    try:
        for fi, fault in enumerate(faults):
            for mi, (name, module) in enumerate(targets(model, fault)):
                rate = fault.rate_of(name)
                rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, fi, mi])
                if fault.target == "features":
                    handles.append(module.register_forward_hook(_feature_hook(fault, rate, rng)))
                    continue
                w = getattr(module, "weight", None)
                if not isinstance(w, torch.Tensor) or rate == 0.0:
                    continue
                with torch.no_grad():
                    saved.append((w, w.detach().clone()))
                    w.copy_(corrupt(w, kind=fault.kind, rate=rate, fmt=fault.format, rng=rng))
        yield model
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for w, clean in reversed(saved):
                w.copy_(clean)


def draw_seed(seed: int, draw: int) -> int:
    """The seed of draw ``draw`` of an evaluation seeded ``seed``."""
    return (int(seed) * 1_000_003 + int(draw)) & 0x7FFFFFFF


def accuracy_under_faults(model: nn.Module, batches: Sequence[Any], faults: Sequence[FaultOptions], *,
                          draws: int, seed: int, runtime: Any = None) -> list[float]:
    """Accuracy of ``model`` on ``batches`` under each of ``draws`` seeded fault draws."""
    from hwnas.search.training import evaluate

    if draws < 1:
        raise ConfigError(f"draws: must be >= 1, got {draws}")
    out = []
    for d in range(draws):
        with inject(model, faults, draw_seed(seed, d)):
            out.append(evaluate(model, batches, runtime=runtime)["accuracy"])
    return out
