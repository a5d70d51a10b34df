"""The stages of a detection run, each resumable from the run folder (see :mod:`.flow`)."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from hwnas.errors import ConfigError
from hwnas.search.detection.flow import (
    DetRun,
    Pricer,
    build_run,
    fixed_batches,
    no_nan,
    score,
    source_pricer,
    train_steps,
    write_json,
)
from hwnas.search.detection.model import DetSupernet, detector_primitives
from hwnas.search.rollout import Rollout
from hwnas.search.training import preserved_buffers, recalibrate_bn

log = logging.getLogger(__name__)


def supernet_stage(run: DetRun, out: Path) -> DetSupernet:
    """Train (or reload) the shared backbone + head on uniformly sampled subnets."""
    if run.parts["supernet"].sampling == "sandwich":
        if not callable(getattr(run.wm, "extreme_arch", None)):
            raise ConfigError(f"supernet.sampling: sandwich needs a supernet with a largest and a smallest subnet; "
                              f"weights_manager {run.raw['weights_manager'].get('type')!r} has none: use uniform")
        try:
            run.wm.extreme_arch("max")
        except ConfigError as exc:
            raise ConfigError(f"supernet.sampling: {exc}") from None
    torch.manual_seed(run.seed)
    net = DetSupernet(run.wm, run.dataset.num_classes, run.dataset.resolution, run.parts["head"])
    path = out / "supernet.pt"
    if path.is_file():
        net.load_state_dict(torch.load(path, weights_only=True))
        return net
    rng = np.random.default_rng(run.seed)
    net.train()
    t0 = time.perf_counter()
    o = run.parts["supernet"]

    def subnets() -> list[Any]:
        archs = [run.space.sample(rng)]
        if o.sampling == "sandwich":
            archs = [run.wm.extreme_arch("max"), run.wm.extreme_arch("min"), *archs]
        return [lambda x, c=run.wm.config_of(a): net(x, c) for a in archs]

    losses = train_steps(subnets, net.parameters(), run, o, net.priors, run.seed)
    torch.save(net.state_dict(), path)
    write_json(out / "supernet.json", {"losses": losses, "wall_s": time.perf_counter() - t0})
    return net


def search_stage(run: DetRun, net: DetSupernet, out: Path, pricer: Pricer | None) -> dict[str, Any]:
    """Score the controller's rollouts with the shared weights; the best reward wins."""
    path = out / "search.json"
    if path.is_file():
        return dict(json.loads(path.read_text()))
    from hwnas.search.build import build_component

    o = run.parts["search"]
    controller = build_component(run.controller_cfg, space=run.space, seed=run.seed)
    held = fixed_batches(run, "valid", o.eval_images, o.eval_batch_size, False, 0)
    calib = [x for x, _ in fixed_batches(run, "train", o.calib_batches * o.eval_batch_size, o.eval_batch_size,
                                         True, run.seed + 17)][: o.calib_batches]
    history, t0 = [], time.perf_counter()
    while len(history) < o.rollouts:
        rollouts = controller.sample(min(o.batch, o.rollouts - len(history)))
        for r in rollouts:
            evaluate_rollout(run, net, r, held, calib, pricer)
            history.append({"arch": run.space.to_str(r.arch), "perfs": dict(r.perfs), "reward": r.reward})
        controller.step(rollouts)
    best = max(history, key=lambda h: h["reward"])
    result = {"history": history, "best": best, "wall_s": time.perf_counter() - t0}
    write_json(path, result)
    return result


def evaluate_rollout(run: DetRun, net: DetSupernet, r: Rollout, held: Any, calib: Any, pricer: Pricer | None) -> None:
    """Perfs (map50, latency_ms when priced) and reward of one rollout on shared weights."""
    det = net.candidate(r.arch)
    with preserved_buffers(net):
        if calib:
            recalibrate_bn(det, calib, owner=net)
        res = score(det, held, run.dataset.num_classes, run.dataset.resolution)
    r.perfs["map50"] = float(res["map50"])
    reward = r.perfs["map50"]
    if pricer is not None:
        prims = detector_primitives(run.space, r.arch, run.dataset.num_classes, run.dataset.resolution,
                                    run.parts["head"])
        r.perfs["latency_ms"] = pricer(prims)
        reward -= run.parts["search"].latency_weight * r.perfs["latency_ms"]
    r.reward = float(reward)


def final_stage(run: DetRun, net: DetSupernet, arch_str: str, out: Path) -> Any:
    """Export the derived detector and train it (from the supernet's weights or fresh)."""
    arch = run.space.from_str(arch_str)
    o = run.parts["final"]
    if o.init == "scratch":
        torch.manual_seed(run.seed + 1)
        for m in net.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    det = net.export(arch)
    path = out / "final.pt"
    if path.is_file():
        det.load_state_dict(torch.load(path, weights_only=True))
        return det.eval()
    det.train()
    t0 = time.perf_counter()
    losses = train_steps(lambda: [det], det.parameters(), run, o, det.priors, run.seed + 1)
    torch.save(det.state_dict(), path)
    write_json(out / "final.json", {"arch": arch_str, "losses": losses, "wall_s": time.perf_counter() - t0})
    return det.eval()


def mean_box_baseline(run: DetRun, batches: Any) -> dict[str, Any]:
    """The trivial detector: for every image, each class's mean training box, scored by the
    class's share of training boxes (what a detector that ignores the image can do)."""
    from hwnas.search.detection.metrics import voc_map

    c = run.dataset.num_classes
    sums, counts = np.zeros((c, 4)), np.zeros(c)
    for rec in run.dataset.records("train"):
        for box, lab in zip(rec.boxes / np.array([rec.width, rec.height] * 2), rec.labels):
            sums[lab] += box
            counts[lab] += 1
    boxes = torch.tensor(sums / np.maximum(counts, 1)[:, None], dtype=torch.float32)
    scores = torch.tensor(counts / max(1.0, counts.sum()), dtype=torch.float32)
    gts = [t for _, ts in batches for t in ts]
    dets = [{"boxes": boxes, "scores": scores, "labels": torch.arange(c)} for _ in gts]
    m, per_class = voc_map(dets, gts, c)
    return {"map50": m, "ap50_per_class": no_nan(per_class)}


def run_flow(raw: Mapping[str, Any], out: Path, base: Path | None = None, pricer: Pricer | None = None,
             coco: bool = True) -> dict[str, Any]:
    """Every stage in order; returns (and writes ``test.json``) the test results."""
    out.mkdir(parents=True, exist_ok=True)
    run = build_run(raw, base)
    pricer = pricer or source_pricer(run.parts["hardware"])
    net = supernet_stage(run, out)
    search = search_stage(run, net, out, pricer)
    det = final_stage(run, net, search["best"]["arch"], out)
    test = fixed_batches(run, "test", run.dataset.size("test"), run.parts["search"].eval_batch_size, False, 0)
    result = {"arch": search["best"]["arch"], "search_best": search["best"],
              "test": score(det, test, run.dataset.num_classes, run.dataset.resolution, coco=coco),
              "baseline_mean_box": mean_box_baseline(run, test), "classes": run.dataset.class_names}
    arch = run.space.from_str(search["best"]["arch"])
    prims = detector_primitives(run.space, arch, run.dataset.num_classes, run.dataset.resolution, run.parts["head"])
    result["primitives"] = len(prims)
    if pricer is not None:
        result["predicted_latency_ms"] = pricer(prims)
    write_json(out / "test.json", result)
    return result
