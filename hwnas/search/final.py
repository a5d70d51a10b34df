"""Final training and testing of one derived architecture (``hwnas train`` / ``hwnas test``).

A search ranks architectures cheaply; the number a paper or a deployment needs is the
accuracy of the chosen one trained properly, and its latency measured on the device.
This module does exactly that, with a plain, standard recipe (SGD + momentum, cosine
learning rate per step, optional label smoothing and warm-up; the training core of
:mod:`hwnas.search.training`) so results compare across architectures.

Training is resumable to the step: every epoch it writes ``checkpoint.pt`` (model,
optimizer, schedule, per-step losses, history) atomically into the run folder, and each
epoch's randomness (data order, any stochastic layer) is seeded from (seed, epoch)
alone, so a run resumed from epoch *e* has the same loss curve as one that never stopped.

Runs on the config's device (``run.device`` / ``--device``) with its precision; with
``--nproc N`` (or under torchrun) as N DistributedDataParallel ranks, each taking its
part of every global batch; rank 0 alone writes the checkpoint, which holds the plain
module's weights, so a run resumes in either mode.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from hwnas import registry
from hwnas.config import ComponentConfig, RunConfig, load_config, options_to_dict, parse_options
from hwnas.errors import ConfigError
from hwnas.inputs import first_line, output_dir
from hwnas.primitives import NetworkSpec
from hwnas.run_section import TrainOptions
from hwnas.search.archfile import ArchFile, read_arch_file
from hwnas.search.build import check_shapes
from hwnas.search.ckpt_schema import check_train_checkpoint
from hwnas.search.datasets.base import Dataset
from hwnas.search.distributed import barrier, run_distributed, unwrap, wrap
from hwnas.search.runtime import Runtime, exec_options, runtime_for
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.trainable import build_model, inference_state
from hwnas.search.training import evaluate, make_optimizer, make_scheduler, train_pass

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "hwnas-final/2"

__all__ = ["ArchFile", "TrainControl", "build_dataset", "resolve_space", "evaluate_model", "load_trained",
           "read_arch_file", "test", "test_files", "train", "train_files"]


def train_options(config: RunConfig, **overrides: Any) -> TrainOptions:
    """``run.train`` of the config, validated, with non-None CLI overrides applied."""
    data = options_to_dict(config.run.train)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_options(TrainOptions, data, "run.train")


def resolve_space(config: RunConfig, arch_file: ArchFile | None = None,
                  overrides: Mapping[str, Any] | None = None) -> SearchSpace:
    """The config's search space (with ``overrides``: ``run.train.space``); an arch file
    of another space is refused, since the same indices mean a different network there."""
    if "search_space" in config:
        comp = config["search_space"]
        if arch_file is not None and arch_file.space and arch_file.space != comp.type:
            raise ConfigError(f"{arch_file.path}: architecture is for space {arch_file.space!r} but the config's "
                              f"search_space is {comp.type!r}")
        return with_overrides(comp, overrides, "run.train.space").build()
    if arch_file is None or not arch_file.space:
        raise ConfigError("search_space: section missing from the config and the arch file names no space")
    cls = registry.get("search_space", arch_file.space)
    return cls(parse_options(cls.Options, arch_file.space_options, "space_options"))


def with_overrides(comp: ComponentConfig, overrides: Mapping[str, Any] | None, path: str) -> ComponentConfig:
    """``comp`` with some options replaced, validated as a section (errors name ``path``)."""
    if not overrides:
        return comp
    cls = registry.get(comp.role, comp.type)
    return ComponentConfig(comp.role, comp.type, parse_options(cls.Options, {**options_to_dict(comp.options),
                                                                          **overrides}, path))


def build_dataset(config: RunConfig, overrides: Mapping[str, Any] | None = None) -> Dataset:
    """The config's dataset (with ``overrides``: ``run.train.dataset``)."""
    return with_overrides(config["dataset"], overrides, "run.train.dataset").build(seed=config.seed)


def at_arch_resolution(config: RunConfig, space: SearchSpace, arch: Arch,
                       overrides: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Dataset overrides that feed an architecture choosing its own input size (mbv3's
    elastic resolution) images of that size: a subnet derived at 12x12 is trained and
    tested at 12x12, not at the size the supernet's dataset was set to. An explicit
    ``run.train.dataset.resolution`` wins."""
    resolution_of = getattr(space, "resolution_of", None)
    if not callable(resolution_of) or "dataset" not in config or (overrides and "resolution" in overrides):
        return overrides
    comp = config["dataset"]
    if "resolution" not in getattr(registry.get("dataset", comp.type).Options, "__dataclass_fields__", {}):
        return overrides
    want = int(resolution_of(arch))
    if options_to_dict(comp.options).get("resolution") == want:
        return overrides
    return {**dict(overrides or {}), "resolution": want}


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
        name = default_supernet(space.name)
        if name is None:
            raise ConfigError(f"weights_manager: no supernet known for space {space.name!r}; add the section")
        wm = registry.get("weights_manager", name)(None, space=space, seed=config.seed)
    try:
        wm.load_state_dict(state)
    except RuntimeError as exc:
        first = first_line(exc)
        raise ConfigError(f"{path}: not a supernet checkpoint for this space and options ({first})") from None
    return wm.export_subnet(arch)


def default_supernet(space: str) -> str | None:
    """The registered weights manager that declares itself the supernet of ``space``."""

    for e in registry.list("weights_manager"):
        if space in getattr(e.obj, "supernet_for", ()):
            return e.name
    return None


def _load(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # torch raises many types for a corrupt/unsafe file
        raise ConfigError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {first_line(exc)})") \
            from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}")
    return obj


def _save_atomic(obj: Mapping[str, Any], path: Path) -> None:
    """Write then rename, so a run killed mid-write keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(dict(obj), tmp)
    os.replace(tmp, path)


def evaluate_model(model: nn.Module, dataset: Dataset, split: str, batch_size: int = 256,
                   runtime: Runtime | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` (eval mode) on a split (each rank its
    share of the split under DDP; the sums are all-reduced)."""
    rt = runtime or Runtime.cpu()
    loader = dataset.loader(split, batch_size=batch_size, shuffle=False, rank=rt.rank, world=rt.world)
    return evaluate(unwrap(model), loader, split=split, runtime=rt)


@dataclass(frozen=True)
class TrainControl:
    """How one training run is driven (not what it trains): ``resume`` its checkpoint,
    start from a supernet's weights (``from_supernet``), end after ``stop_after`` epochs
    *in this call* (the checkpoint stays resumable: how tests and time-boxed jobs
    interrupt a run), and ``on_epoch`` called with each epoch's record on rank 0."""

    resume: bool = False
    from_supernet: str | Path | None = None
    stop_after: int | None = None
    on_epoch: Callable[[dict[str, Any]], None] | None = None


@dataclass
class _Run:
    """The mutable state of one training run (what the checkpoint holds)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epoch: int = 0
    losses: list[float] | None = None
    history: list[dict[str, Any]] | None = None


def _start(config: RunConfig, space: SearchSpace, arch: Arch, o: TrainOptions, steps_per_epoch: int,
           ckpt_path: Path, control: TrainControl, rt: Runtime) -> _Run:
    """A fresh run, or the checkpoint's when resuming (refusing another architecture)."""
    torch.manual_seed(config.seed)
    model = build_model(space, arch, auxiliary=o.auxiliary_weight > 0, drop_path=o.drop_path > 0)
    if control.from_supernet:
        sub = model_from_supernet(config, space, arch, Path(control.from_supernet))
        model.load_state_dict(sub.state_dict(), strict=not o.auxiliary_weight)
    model = rt.model(model)
    optimizer = make_optimizer(model.parameters(), o)
    scheduler = make_scheduler(optimizer, o, o.epochs * steps_per_epoch,
                               warmup_steps=o.warmup_epochs * steps_per_epoch + o.warmup_steps)
    run = _Run(wrap(model, rt), optimizer, scheduler, 0, [], [])
    if not ckpt_path.exists():
        return run
    if not control.resume:
        raise ConfigError(f"{ckpt_path}: a checkpoint exists; resume it or choose another output folder")
    state = _load(ckpt_path, rt.map_location())
    check_train_checkpoint(state, ckpt_path, CHECKPOINT_FORMAT, arch)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if rt.scaler is not None and "scaler" in state:
            rt.scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{ckpt_path}: checkpoint does not fit this run ({first_line(exc)})") from None
    run.epoch, run.losses, run.history = int(state["epoch"]), list(state["losses"]), list(state["history"])
    log.info("resuming %s from epoch %d", ckpt_path, run.epoch)
    return run


def _epoch(run: _Run, config: RunConfig, dataset: Dataset, o: TrainOptions, has_valid: bool,
           rt: Runtime) -> dict[str, Any]:
    seed = config.seed * 100_003 + run.epoch  # every epoch's randomness from (seed, epoch)
    torch.manual_seed(seed)
    if hasattr(unwrap(run.model), "drop_path_prob"):
        unwrap(run.model).drop_path_prob = o.drop_path * run.epoch / o.epochs  # DARTS: linear ramp over the epochs
    loader = dataset.loader("train", batch_size=o.batch_size, shuffle=True, seed=seed, rank=rt.rank,
                            world=rt.world, drop_last=rt.distributed)
    stats = train_pass(run.model, loader, run.optimizer, o, scheduler=run.scheduler, runtime=rt,
                       aux_weight=o.auxiliary_weight)
    assert run.losses is not None and run.history is not None
    run.losses.extend(stats.losses)
    run.epoch += 1
    rec: dict[str, Any] = {"epoch": run.epoch, "train_loss": stats.mean_loss}
    if has_valid:
        v = evaluate_model(run.model, dataset, "valid", o.eval_batch_size, rt)
        rec.update(valid_accuracy=v["accuracy"], valid_loss=v["loss"])
    run.history.append(rec)
    return rec


def train(config: RunConfig, arch_file: ArchFile, out_dir: str | Path, *, options: TrainOptions | None = None,
          control: TrainControl | None = None, runtime: Runtime | None = None,
          device: str | None = None) -> dict[str, Any]:
    """Train ``arch_file``'s architecture; returns the summary (also in ``summary.json``).
    ``control``: resume, start from supernet weights, stop early, report each epoch."""
    control = control or TrainControl()
    stop_after, on_epoch = control.stop_after, control.on_epoch
    rt = runtime or runtime_for(config.run, device)
    o = options or train_options(config)
    space = resolve_space(config, arch_file, o.space)
    arch = arch_file.resolve(space)
    dataset = build_dataset(config, at_arch_resolution(config, space, arch, o.dataset))
    check_shapes(space, dataset)
    out = output_dir(out_dir, "output folder", parents=True)
    ckpt_path = out / CHECKPOINT
    steps_per_epoch = len(dataset.loader("train", batch_size=o.batch_size, shuffle=False, rank=rt.rank,
                                         world=rt.world, drop_last=rt.distributed))
    run = _start(config, space, arch, o, steps_per_epoch, ckpt_path, control, rt)
    from hwnas.search.tensorboard import open_run_log

    tb = open_run_log(out, config, run.epoch) if rt.is_main else None  # loss, lr, accuracy per epoch
    has_valid = dataset.size("valid") > 0
    end = o.epochs if stop_after is None else min(o.epochs, run.epoch + stop_after)
    while run.epoch < end:
        rec = _epoch(run, config, dataset, o, has_valid, rt)
        if tb is not None:
            tb.scalars(run.epoch, {**{k: v for k, v in rec.items() if k != "epoch"},
                                   "lr": run.optimizer.param_groups[0]["lr"]}, prefix="train/")
        if rt.is_main:  # the only writer; every rank holds the same weights
            state = {"format": CHECKPOINT_FORMAT, "epoch": run.epoch, "model": unwrap(run.model).state_dict(),
                     "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                     "losses": run.losses, "history": run.history, "arch": list(arch),
                     "arch_str": space.to_str(arch), "space": space.name, "options": options_to_dict(o)}
            if rt.scaler is not None:
                state["scaler"] = rt.scaler.state_dict()
            _save_atomic(state, ckpt_path)
        barrier(rt)
        if on_epoch is not None and rt.is_main:
            on_epoch({**rec, "epochs_total": o.epochs})
    if tb is not None:
        tb.close()
    history = run.history or []
    summary = {"space": space.name, "arch": space.to_str(arch), "epochs_done": len(history), "epochs": o.epochs,
               "finished": len(history) >= o.epochs, "history": history, "losses": run.losses,
               "checkpoint": str(ckpt_path), "options": options_to_dict(o), "device": str(rt.device),
               "world": rt.world, "rank": rt.rank}
    if rt.is_main:
        (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2))
    return summary


def train_files(config: str | Path, arch: str | Path, *, rank: int = 0, out: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None, nproc: int = 1, device: str | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """:func:`train` from a config file and an architecture file; the output folder
    defaults to ``runs/train-<arch file stem>``; ``overrides`` replace ``run.train`` fields.
    ``nproc`` > 1 trains with that many DDP processes (spawned; under torchrun the group
    torchrun made); ``on_epoch`` is then called in this process only when it is rank 0."""
    cfg = load_config(config)
    train_options(cfg, **dict(overrides or {}))  # bad options fail here, before any process starts
    read_arch_file(arch, rank)
    out_dir = output_dir(out, "output folder", create=False) if out else Path("runs") / f"train-{Path(arch).stem}"
    if "search_space" in cfg and cfg["search_space"].type == "rnn_cell":  # language models (issue 23)
        from hwnas.search.language import flow

        return flow.train_files(cfg, read_arch_file(arch, rank), out_dir, dict(overrides or {}), nproc=nproc, **kwargs)
    control = TrainControl(**kwargs)  # unknown names fail here, in this process
    if nproc > 1:
        control = replace(control, on_epoch=None)  # a callback cannot cross into spawned processes
    return run_distributed(_train_rank, nproc, exec_options(cfg.run, device), str(config), str(arch), rank,
                           str(out_dir), dict(overrides or {}), control)


def _train_rank(rt: Runtime, config: str, arch: str, rank: int, out: str, overrides: dict[str, Any],
                control: TrainControl) -> dict[str, Any]:
    """One rank (or the only process) of :func:`train_files`."""
    cfg = load_config(config)
    return train(cfg, read_arch_file(arch, rank), out, options=train_options(cfg, **overrides), control=control,
                 runtime=rt)


def load_trained(space: SearchSpace, arch: Arch, path: str | Path, map_location: str = "cpu") -> nn.Module:
    """The architecture's module with a ``hwnas train`` checkpoint's (or a bare state dict's) weights."""
    state = _load(Path(path), map_location)
    if state.get("format") == CHECKPOINT_FORMAT:
        if list(state.get("arch", [])) != list(arch):
            raise ConfigError(f"{path}: checkpoint holds {state.get('arch_str')!r}, not {space.to_str(arch)!r}")
        state = state["model"]
    model = build_model(space, arch)
    try:
        model.load_state_dict(inference_state(state))
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not fit this architecture ({first_line(exc)})") from None
    return model.eval()


def test_files(config: str | Path, arch: str | Path, checkpoint: str | Path, *, rank: int = 0,
               **kwargs: Any) -> dict[str, Any]:
    """:func:`test` from a config file and an architecture file."""
    cfg = load_config(config)
    if "search_space" in cfg and cfg["search_space"].type == "rnn_cell":  # language models (issue 23)
        from hwnas.search.language import flow

        return flow.test_files(cfg, read_arch_file(arch, rank), checkpoint, **kwargs)
    return test(cfg, read_arch_file(arch, rank), checkpoint, **kwargs)


def test(config: RunConfig, arch_file: ArchFile, checkpoint: str | Path, *,
         measure: Callable[[NetworkSpec], Mapping[str, Any]] | None = None, cost_model: str | Path | None = None,
         batch_size: int = 256, device: str | None = None) -> dict[str, Any]:
    """Test-split accuracy; with ``measure`` what it reports of the network (``hwnas test
    --profile`` passes :func:`hwnas.profilers.api.measure_network`: the search engine never
    imports the profilers, the edge hands it the measurement) and, with ``cost_model`` (a
    folder or ``asset:NAME``), the cost source's prediction beside it."""
    o = train_options(config)
    space = resolve_space(config, arch_file, o.space)
    arch = arch_file.resolve(space)
    dataset = build_dataset(config, at_arch_resolution(config, space, arch, o.dataset))
    check_shapes(space, dataset)
    rt = runtime_for(config.run, device)
    model = rt.model(load_trained(space, arch, checkpoint, rt.map_location()))
    res: dict[str, Any] = {"space": space.name, "arch": space.to_str(arch), "device": str(rt.device),
                           **{f"test_{k}": v for k, v in evaluate_model(model, dataset, "test", batch_size,
                                                                        rt).items()}}
    spec = space.to_network(arch)
    res["network_hash"] = spec.hash
    if measure is not None:
        res.update(measure(spec))
    if cost_model is not None:
        from hwnas.cost_models.source import SourceRequest, open_source

        src = open_source(SourceRequest(model=cost_model, option="--cost-model"), check_metric=False)
        res[f"predicted_{src.target}_{src.unit.lower()}"] = src.cost(spec)
        res["cost_model"] = str(cost_model)
    return res
