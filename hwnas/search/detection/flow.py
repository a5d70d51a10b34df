"""DetNAS-style detection search: supernet training -> search -> derive -> train -> test.

One YAML file describes the run (``configs/detnas-*.yaml``): the backbone space and its
supernet weights manager, a detection dataset, the SSDLite head, supernet training, a
controller (any registered one: evolution, random, rl, ...), the search budget, the
optional hardware source, and final training. Each stage writes its result into the run
folder and a rerun skips finished stages (``supernet.pt``, ``search.json``,
``final.pt``, ``test.json``), so a killed run resumes at the stage it was in.

Scoring a rollout follows the mepa evaluator's fairness rules: BatchNorm statistics are
recalibrated for each subnet on the same training batches, every subnet is scored on the
same validation images, and the supernet's buffers are restored afterwards. The reward
is the ``detection`` objective's (mAP@0.5), optionally minus ``latency_weight`` times
the hardware price of backbone and head in ms.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch

from hwnas.config import opt, parse_component
from hwnas.errors import ConfigError
from hwnas.options import options_to_dict, parse_options
from hwnas.primitives import Primitive
from hwnas.run_section import OptimOptions
from hwnas.search.build import build_component
from hwnas.search.detection.loss import multibox_loss
from hwnas.search.detection.metrics import coco_map, voc_map
from hwnas.search.detection.ssd import Detector, HeadOptions
from hwnas.search.training import clip_and_step, make_optimizer, make_scheduler

log = logging.getLogger(__name__)
Pricer = Callable[[Sequence[Primitive]], float]


@dataclass(frozen=True)
class StepsOptions(OptimOptions):
    """Supernet or final training: SGD steps on detection batches."""

    steps: int = opt(200, min=0, help="training steps")
    batch_size: int = opt(16, min=1, help="training batch size")
    grad_clip: float = opt(5.0, min=0.0, help="gradient-norm clip (0 = off)")
    warmup_steps: int = opt(20, min=0, help="linear warm-up steps")
    neg_pos: int = opt(3, min=1, help="hard negatives kept per positive prior (SSD: 3)")


@dataclass(frozen=True)
class SupernetOptions(StepsOptions):
    sampling: Literal["uniform", "sandwich"] = opt(
        "uniform", help="subnets per step: one uniform at random (DetNAS), or largest + smallest + random with "
                        "summed gradients (the sandwich rule of OFA / BigNAS)")


@dataclass(frozen=True)
class FinalOptions(StepsOptions):
    init: Literal["inherit", "scratch"] = opt("inherit", help="start from the supernet's weights or from a fresh init")


@dataclass(frozen=True)
class SearchOptions:
    rollouts: int = opt(24, min=1, help="architectures scored during the search")
    batch: int = opt(4, min=1, help="rollouts sampled per controller step")
    eval_images: int = opt(64, min=1, help="validation images every rollout is scored on")
    calib_batches: int = opt(2, min=0, help="training batches for BN recalibration per subnet (0 = off)")
    eval_batch_size: int = opt(32, min=1, help="batch size of scoring and calibration")
    latency_weight: float = opt(0.0, min=0.0, help="reward = mAP@0.5 - latency_weight * predicted ms")


@dataclass(frozen=True)
class HardwareOptions:
    store: Path | None = opt(None, asset="store", help="cost store (or asset:NAME) holding the detector's primitives")
    model: Path | None = opt(None, asset="cost_model", help="fitted cost model folder or asset:NAME")
    device: str = opt("", help="device in the store")
    backend: str = opt("", help="backend of the store measurements")


SECTIONS = {"head": HeadOptions, "supernet": SupernetOptions, "search": SearchOptions, "final": FinalOptions,
            "hardware": HardwareOptions}
KNOWN = set(SECTIONS) | {"seed", "search_space", "weights_manager", "dataset", "controller"}


@dataclass
class DetRun:
    """The built parts of a detection run."""

    raw: Mapping[str, Any]
    seed: int
    space: Any
    wm: Any
    dataset: Any
    parts: dict[str, Any]
    controller_cfg: Any
    base: Path | None


def parse_sections(raw: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Every section parsed and validated without reading data (one line naming the YAML
    path on a bad key or value): the component configs and the flow's own options."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(sorted(KNOWN))})")
    for need in ("search_space", "dataset"):
        if need not in raw:
            raise ConfigError(f"{need}: section missing")
    out: dict[str, Any] = {k: parse_options(cls, raw.get(k) or {}, k, base) for k, cls in SECTIONS.items()}
    out["search_space"] = parse_component("search_space", raw["search_space"], base)
    out["weights_manager"] = parse_component("weights_manager", raw.get("weights_manager", {"type": "supernet"}), base)
    out["dataset"] = parse_component("dataset", raw["dataset"], base)
    out["controller"] = parse_component("controller", raw.get("controller", {"type": "evolution", "population": 8,
                                                                             "sample_size": 3}), base)
    return out


def build_run(raw: Mapping[str, Any], base: Path | None = None) -> DetRun:
    """:func:`parse_sections`, then build the components (the dataset reads its annotations)."""
    sec = parse_sections(raw, base)
    seed = int(raw.get("seed", 0))
    space = sec["search_space"].build()
    wm = build_component(sec["weights_manager"], space=space, seed=seed)
    if not hasattr(wm, "module"):
        raise ConfigError("weights_manager.type: detection search needs a shared-weights supernet")
    dataset = build_component(sec["dataset"], seed=seed)
    if getattr(dataset, "task", "") != "detection":
        raise ConfigError(f"dataset.type: detection needs a detection dataset (voc, coco), got {raw['dataset']}")
    parts = {k: sec[k] for k in SECTIONS}
    return DetRun(raw, seed, space, wm, dataset.prepare(), parts, sec["controller"], base)


def endless(dataset: Any, batch_size: int, seed: int) -> Any:
    """Training batches forever, reshuffled (seeded) each epoch."""
    epoch = 0
    while True:
        for batch in dataset.loader("train", batch_size=batch_size, shuffle=True, seed=seed * 1000 + epoch):
            yield batch
        epoch += 1


def train_steps(forwards: Callable[[], Sequence[Callable[[torch.Tensor], Any]]], params: Any, run: DetRun,
                o: StepsOptions, priors: torch.Tensor, seed: int) -> list[float]:
    """``o.steps`` SGD steps of the multibox loss, summed over the models ``forwards()``
    gives for each step (one, or a sandwich of subnets); returns the mean loss per step."""
    params = list(params)
    optimizer = make_optimizer(params, o)
    scheduler = make_scheduler(optimizer, o, o.steps)
    batches, losses = endless(run.dataset, o.batch_size, seed), []
    for _ in range(o.steps):
        x, targets = next(batches)
        optimizer.zero_grad(set_to_none=True)
        step = []
        for forward in forwards():
            loc, conf = forward(x)
            loss = multibox_loss(loc, conf, priors, targets, o.neg_pos)["loss"]
            if not torch.isfinite(loss):
                raise ConfigError(f"training diverged (loss {float(loss)}): lower lr or set grad_clip")
            loss.backward()
            step.append(float(loss.detach()))
        clip_and_step(optimizer, params, o.grad_clip)
        scheduler.step()
        losses.append(float(np.mean(step)))
    return losses


def detections(det: Detector, batches: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(detections, ground truth) over ``batches`` in eval mode (modes restored after)."""
    modes = [(m, m.training) for m in det.modules()]
    det.eval()
    dets, gts = [], []
    try:
        for x, targets in batches:
            dets += det.detect(x)
            gts += targets
    finally:
        for m, mode in modes:
            m.training = mode
    return dets, gts


def score(det: Detector, batches: Sequence[Any], num_classes: int, resolution: int,
          coco: bool = False) -> dict[str, Any]:
    """VOC mAP@0.5 with per-class APs, and COCO's mAP@[.5:.95] when asked."""
    dets, gts = detections(det, batches)
    m, per_class = voc_map(dets, gts, num_classes)
    out: dict[str, Any] = {"map50": m, "ap50_per_class": no_nan(per_class), "images": len(gts)}
    if coco:
        c = coco_map(dets, gts, num_classes, scale=float(resolution))
        out.update({"coco_map": c["map"], "coco_map50": c["map50"], "coco_ap_per_class": no_nan(c["per_class"])})
    return out


def no_nan(values: Sequence[float]) -> list[float | None]:
    """Per-class APs for JSON: None where a class has no ground truth in the split (no AP)."""
    return [None if v != v else float(v) for v in values]


def fixed_batches_of(dataset: Any, split: str, images: int, batch_size: int, shuffle: bool = False,
                    seed: int = 0) -> list[Any]:
    """The first batches of a split holding ``images`` images (0 = all), fixed for a run."""
    out, n = [], 0
    for x, t in dataset.loader(split, batch_size=batch_size, shuffle=shuffle, seed=seed):
        if images and n >= images:
            break
        keep = len(x) if not images else min(len(x), images - n)
        out.append((x[:keep], t[:keep]))
        n += keep
    return out


def fixed_batches(run: DetRun, split: str, images: int, batch_size: int, shuffle: bool, seed: int) -> list[Any]:
    return fixed_batches_of(run.dataset, split, images, batch_size, shuffle, seed)


def source_pricer(o: HardwareOptions) -> Pricer | None:
    """A pricer from the ``hardware`` section's cost source (None when the section is empty)."""
    if o.store is None and o.model is None:
        return None
    from hwnas.cost_models.source import SourceRequest, open_source

    src = open_source(SourceRequest(model=o.model, store=o.store, device=o.device, backend=o.backend,
                                    option="hardware"))
    return lambda items: float(np.sum(src.item_costs(list(items))))


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)


def options_dump(run: DetRun) -> dict[str, Any]:
    return {k: options_to_dict(v) for k, v in run.parts.items()}
