"""Final training and testing of one derived architecture (``hwnas train`` / ``hwnas test``).

A search ranks architectures cheaply; the number a paper or a deployment needs is the
accuracy of the chosen one trained properly, and its latency measured on the device.
This module does exactly that, with a plain, standard recipe (SGD + momentum, cosine
learning rate per step, optional label smoothing and warm-up) so results compare
across architectures.

Training is resumable to the step: every epoch it writes ``checkpoint.pt`` (model,
optimizer, per-step losses, history) atomically into the run folder, and each epoch's
randomness (data order, any stochastic layer) is seeded from (seed, epoch) alone, so a
run resumed from epoch *e* has the same loss curve as one that never stopped.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.config import RunConfig, opt, options_to_dict, parse_options, read_yaml
from hwnas.errors import ConfigError
from hwnas.profilers.builders import build_network
from hwnas.search.datasets.base import Dataset
from hwnas.search.build import check_shapes
from hwnas.search.spaces.base import Arch, SearchSpace

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "hwnas-final/1"

__all__ = ["ArchFile", "TrainOptions", "build_dataset", "build_space", "evaluate_model", "load_trained",
           "read_arch_file", "test", "train"]


@dataclass(frozen=True)
class ArchFile:
    """An architecture file as ``hwnas derive`` writes it: ``space`` (registry name),
    ``arch`` (the space's string form, a list of choice indices, or a mapping of
    decision -> value) and optionally ``space_options``. A file with ``archs`` (a
    ranked list of such entries) stands for its first entry."""

    path: Path
    space: str | None
    arch: Any
    space_options: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, space: SearchSpace) -> Arch:
        """The arch as choice indices of ``space``; an unknown op is named in one line."""
        a = self.arch
        try:
            if isinstance(a, str):
                _check_ops(space, a, self.path)
                return space.from_str(a)
            if isinstance(a, Mapping):
                return space.from_jsonable(dict(a))
            if isinstance(a, (list, tuple)):
                return space.validate(a)
        except ConfigError:
            raise
        except ValueError as exc:  # ValidationError included
            raise ConfigError(f"{self.path}: {exc}") from None
        raise ConfigError(f"{self.path}: arch must be a string, a list of indices or a mapping, got {a!r}")


def _check_ops(space: SearchSpace, text: str, path: Path) -> None:
    """Name the first op the space does not know (spaces' parsers only say 'cannot parse')."""
    if space.name == "nb201":
        from hwnas.search.spaces.nb201 import OPS

        known = list(OPS)
        ops = re.findall(r"([^|+~\s]+)~\d+", text)
    elif space.name == "mbv2":
        so = space.options  # type: ignore[attr-defined]
        known = [f"e{e}k{k}" for e in so.expansions for k in so.kernels]
        ops = [b.strip() for st in text.split("|") for b in st.split(":", 1)[-1].split(",") if b.strip()]
    elif space.name == "fbnet":
        from hwnas.search.spaces.fbnet import OPS as FB_OPS

        known, ops = list(FB_OPS), text.split()
    else:
        return
    for op in ops:
        if op not in known:
            raise ConfigError(f"{path}: unknown op {op!r} for space {space.name} (known: {', '.join(known)})")


def read_arch_file(path: str | Path, rank: int = 0) -> ArchFile:
    """Parse an architecture YAML (safe_load); structure errors name the file.

    Accepts ``hwnas derive``'s ``best.yaml`` (a ranked list of records with ``arch_str``
    and ``arch``; ``rank`` picks one, 0 = best), a single record, a mapping with
    ``space`` and ``arch``, or a bare string / list of indices. ``arch_str`` wins over
    ``arch`` when both are present: it is the form people read and edit.
    """
    p = Path(path)
    data = read_yaml(p, "architecture file")
    if isinstance(data, Mapping) and "arch" not in data and "arch_str" not in data \
            and isinstance(data.get("archs"), list):
        data = [{**{k: v for k, v in data.items() if k != "archs"}, **(e if isinstance(e, Mapping) else {"arch": e})}
                for e in data["archs"]]
    if isinstance(data, list) and data and all(isinstance(e, Mapping) for e in data):
        if not 0 <= rank < len(data):
            raise ConfigError(f"{p}: holds {len(data)} architecture(s); rank {rank} is out of range")
        data = data[rank]
    if isinstance(data, (str, list)):
        data = {"arch": data}
    if not isinstance(data, Mapping) or ("arch" not in data and "arch_str" not in data):
        raise ConfigError(f"{p}: expected 'arch' (or 'arch_str') as written by hwnas derive")
    arch = data["arch_str"] if isinstance(data.get("arch_str"), str) else data["arch"]
    space = data.get("space")
    if isinstance(space, Mapping):  # {type: nb201, ...options}
        return ArchFile(p, space.get("type"), arch, {k: v for k, v in space.items() if k != "type"})
    if space is not None and not isinstance(space, str):
        raise ConfigError(f"{p}: space must be a name, got {space!r}")
    return ArchFile(p, space, arch, dict(data.get("space_options") or {}))


@dataclass(frozen=True)
class TrainOptions:
    """The final-training recipe (YAML section ``run.train``; CLI flags override)."""

    epochs: int = opt(30, min=1, help="training epochs")
    batch_size: int = opt(64, min=1, help="training batch size")
    lr: float = opt(0.05, gt=0, help="peak SGD learning rate (cosine decay to 0 per step)")
    momentum: float = opt(0.9, min=0, lt=1, help="SGD momentum (Nesterov when > 0)")
    weight_decay: float = opt(5e-4, min=0, help="SGD weight decay")
    label_smoothing: float = opt(0.1, min=0, lt=1, help="label smoothing of the cross-entropy loss")
    warmup_epochs: int = opt(0, min=0, help="linear warm-up epochs before the cosine decay")
    grad_clip: float = opt(5.0, min=0, help="gradient-norm clip (0 = off)")
    eval_batch_size: int = opt(256, min=1, help="batch size for validation and test")


def train_options(config: RunConfig, **overrides: Any) -> TrainOptions:
    """``run.train`` of the config, validated, with non-None CLI overrides applied."""
    data = dict((config.run or {}).get("train") or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_options(TrainOptions, data, "run.train")


def build_space(config: RunConfig, arch_file: ArchFile | None = None) -> SearchSpace:
    """The config's search space; an arch file of another space is refused, since the
    same indices mean a different network there."""
    if "search_space" in config:
        comp = config["search_space"]
        if arch_file is not None and arch_file.space and arch_file.space != comp.type:
            raise ConfigError(f"{arch_file.path}: architecture is for space {arch_file.space!r} but the config's "
                              f"search_space is {comp.type!r}")
        return comp.build()
    if arch_file is None or not arch_file.space:
        raise ConfigError("search_space: section missing from the config and the arch file names no space")
    from hwnas import registry
    from hwnas.config import parse_options as parse

    cls = registry.get("search_space", arch_file.space)
    return cls(parse(cls.Options, arch_file.space_options, "space_options"))


def build_dataset(config: RunConfig) -> Dataset:
    return config["dataset"].build(seed=config.seed)


def build_model(space: SearchSpace, arch: Arch) -> nn.Module:
    """A freshly initialised module of the architecture (the profilers' builders)."""
    return build_network(space.to_network(arch))


def model_from_supernet(config: RunConfig, space: SearchSpace, arch: Arch, path: Path) -> nn.Module:
    """The subnet's weights exported from a supernet checkpoint: a ``hwnas search`` run
    directory (or its checkpoint.json), a torch file with the supernet state dict, or a
    dict holding one under ``weights_manager`` / ``supernet``."""
    if path.is_dir() or path.suffix == ".json":  # a search run dir / its checkpoint.json
        from hwnas.search.trainers.checkpoint import load_checkpoint

        run_state = load_checkpoint(path if path.is_dir() else path.parent)
        if run_state is None:
            raise ConfigError(f"{path}: no search checkpoint (checkpoint.json) there")
        state = dict(run_state)
    else:
        state = _load(path)
    for key in ("weights_manager", "supernet", "state_dict"):
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if "weights_manager" in config:
        wm = config["weights_manager"].build(space=space, seed=config.seed)
    else:
        from hwnas import registry

        name = default_supernet(space.name)
        if name is None:
            raise ConfigError(f"weights_manager: no supernet known for space {space.name!r}; add the section")
        wm = registry.get("weights_manager", name)(None, space=space, seed=config.seed)
    try:
        wm.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{path}: not a supernet checkpoint for this space and options ({first})") from None
    return wm.export_subnet(arch)


def default_supernet(space: str) -> str | None:
    """The registered weights manager that declares itself the supernet of ``space``."""
    from hwnas import registry

    for e in registry.list("weights_manager"):
        if space in getattr(e.obj, "supernet_for", ()):
            return e.name
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # torch raises many types for a corrupt/unsafe file
        raise ConfigError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
            from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}")
    return obj


def _save_atomic(obj: Mapping[str, Any], path: Path) -> None:
    """Write then rename, so a run killed mid-write keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(dict(obj), tmp)
    os.replace(tmp, path)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay from ``peak`` to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1.0 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def evaluate_model(model: nn.Module, dataset: Dataset, split: str, batch_size: int = 256) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` (eval mode) on a split."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in dataset.loader(split, batch_size=batch_size, shuffle=False):
        logits = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    if n == 0:
        raise ConfigError(f"dataset: the {split} split is empty")
    return {"accuracy": correct / n, "loss": loss / n, "n": float(n)}


def train(config: RunConfig, arch_file: ArchFile, out_dir: str | Path, *, options: TrainOptions | None = None,
          resume: bool = False, from_supernet: str | Path | None = None, stop_after: int | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``arch_file``'s architecture; returns the summary (also in ``summary.json``).

    ``stop_after`` ends the run after that many epochs *in this call* (the checkpoint
    stays resumable), which is how tests and time-boxed jobs interrupt a run.
    """
    o = options or train_options(config)
    space = build_space(config, arch_file)
    arch = arch_file.resolve(space)
    dataset = build_dataset(config)
    check_shapes(space, dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT

    torch.manual_seed(config.seed)
    model = model_from_supernet(config, space, arch, Path(from_supernet)) if from_supernet else build_model(space, arch)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                nesterov=o.momentum > 0)
    start, losses, history = 0, [], []
    if ckpt_path.exists():
        if not resume:
            raise ConfigError(f"{ckpt_path}: a checkpoint exists; pass --resume to continue or choose another --out")
        state = _load(ckpt_path)
        if state.get("format") != CHECKPOINT_FORMAT or list(state.get("arch", [])) != list(arch):
            raise ConfigError(f"{ckpt_path}: checkpoint is of another architecture or format; use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, losses, history = int(state["epoch"]), list(state["losses"]), list(state["history"])
        log.info("resuming %s from epoch %d", ckpt_path, start)

    steps_per_epoch = len(dataset.loader("train", batch_size=o.batch_size, shuffle=False))
    total = o.epochs * steps_per_epoch
    warmup = o.warmup_epochs * steps_per_epoch
    has_valid = dataset.size("valid") > 0 if hasattr(dataset, "size") else True
    end = o.epochs if stop_after is None else min(o.epochs, start + stop_after)
    for epoch in range(start, end):
        torch.manual_seed(config.seed * 100_003 + epoch)  # every epoch's randomness from (seed, epoch)
        model.train()
        epoch_losses: list[float] = []
        loader = dataset.loader("train", batch_size=o.batch_size, shuffle=True, seed=config.seed * 100_003 + epoch)
        for i, (x, y) in enumerate(loader):
            for g in optimizer.param_groups:
                g["lr"] = lr_at(epoch * steps_per_epoch + i, total, warmup, o.lr)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y, label_smoothing=o.label_smoothing)
            loss.backward()
            if o.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        losses.extend(epoch_losses)
        rec: dict[str, Any] = {"epoch": epoch + 1, "train_loss": sum(epoch_losses) / max(1, len(epoch_losses))}
        if has_valid:
            v = evaluate_model(model, dataset, "valid", o.eval_batch_size)
            rec.update(valid_accuracy=v["accuracy"], valid_loss=v["loss"])
        history.append(rec)
        _save_atomic({"format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "model": model.state_dict(),
                      "optimizer": optimizer.state_dict(), "losses": losses, "history": history,
                      "arch": list(arch), "arch_str": space.to_str(arch), "space": space.name,
                      "options": options_to_dict(o)}, ckpt_path)
        if on_epoch is not None:
            on_epoch(rec)
    summary = {"space": space.name, "arch": space.to_str(arch), "epochs_done": len(history), "epochs": o.epochs,
               "finished": len(history) >= o.epochs, "history": history, "losses": losses,
               "checkpoint": str(ckpt_path), "options": options_to_dict(o)}
    (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2))
    return summary


def load_trained(space: SearchSpace, arch: Arch, path: str | Path) -> nn.Module:
    """The architecture's module with a ``hwnas train`` checkpoint's (or a bare state dict's) weights."""
    state = _load(Path(path))
    if state.get("format") == CHECKPOINT_FORMAT:
        if list(state.get("arch", [])) != list(arch):
            raise ConfigError(f"{path}: checkpoint holds {state.get('arch_str')!r}, not {space.to_str(arch)!r}")
        state = state["model"]
    model = build_model(space, arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not fit this architecture ({str(exc).splitlines()[0]})") from None
    return model.eval()


def test(config: RunConfig, arch_file: ArchFile, checkpoint: str | Path, *, profile: bool = False,
         backend: str = "onnxruntime", threads: int = 1, cost_model: str | Path | None = None,
         batch_size: int = 256) -> dict[str, Any]:
    """Test-split accuracy; with ``profile`` the measured latency (median ms, batch 1)
    and, with ``cost_model``, the model's prediction beside it."""
    space = build_space(config, arch_file)
    arch = arch_file.resolve(space)
    dataset = build_dataset(config)
    check_shapes(space, dataset)
    model = load_trained(space, arch, checkpoint)
    res: dict[str, Any] = {"space": space.name, "arch": space.to_str(arch),
                           **{f"test_{k}": v for k, v in evaluate_model(model, dataset, "test", batch_size).items()}}
    spec = space.to_network(arch)
    res["network_hash"] = spec.hash
    if profile:
        import statistics

        from hwnas import registry
        from hwnas.profilers.timing import TimingProtocol

        be = registry.get("backend", backend)(device="cpu", threads=threads)
        be.check_device()
        result = be.measure(spec, TimingProtocol(threads=threads), with_energy=False)
        res.update(backend=backend, threads=threads, latency_ms=statistics.median(result.samples_ms),
                   latency_samples=len(result.samples_ms))
    if cost_model is not None:
        from hwnas.cost_models import load_model

        res["predicted_latency_ms"] = float(load_model(cost_model).predict([spec])[0])
        res["cost_model"] = str(cost_model)
    return res
