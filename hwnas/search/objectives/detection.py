"""Task objective ``detection``: mAP of detector candidates on a detection dataset split.

Perfs: ``map50`` (VOC rules, the reward) and, with ``coco: true``, ``coco_map``
(pycocotools' mAP@[.5:.95], extra ``detection``); the per-class APs of the last call are
kept in :attr:`DetectionObjective.per_class` for reports (a class without ground truth in
the split has no AP, which a perf could not hold). Candidates must be detectors
(:class:`hwnas.search.detection.ssd.Detector`: a backbone's feature maps plus an SSDLite
head); :meth:`assemble_candidates` makes them from a backbone supernet weights manager
(one shared head, seeded), which is how a generic search loop or the contract suite gets
them; the DetNAS flow (:mod:`hwnas.search.detection.flow`) trains and scores its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout


@register("objective", "detection")
class DetectionObjective(Objective):
    """mAP@0.5 (reward) and optionally COCO mAP@[.5:.95] of detectors on a detection split."""

    @dataclass(frozen=True)
    class Options:
        split: Literal["train", "valid", "test"] = opt("valid", help="split the detectors are scored on")
        batch_size: int = opt(32, min=1, help="evaluation batch size")
        max_images: int = opt(0, min=0, help="score on at most this many images (0 = the whole split)")
        coco: bool = opt(False, help="also report COCO mAP@[.5:.95] (needs pycocotools: extra detection)")

    def __init__(self, options: Any, *, dataset: Any = None, seed: int = 0, **_: Any) -> None:
        self.options = options
        self.dataset = dataset
        self.seed = int(seed)
        self.perf_names = ("map50", "coco_map") if options.coco else ("map50",)
        self.per_class: list[list[float]] = []
        self._shared: Any = None

    def _batches(self) -> list[Any]:
        if self.dataset is None or getattr(self.dataset, "task", "") != "detection":
            raise ConfigError("dataset.type: the detection objective needs a detection dataset (voc, coco)")
        from hwnas.search.detection.flow import fixed_batches_of

        return fixed_batches_of(self.dataset.prepare(), self.options.split, self.options.max_images,
                                self.options.batch_size)

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        from hwnas.search.detection.flow import score

        cands = list(candidates) if candidates is not None else [r.candidate for r in rollouts]
        if len(cands) != len(rollouts) or any(not callable(getattr(c, "detect", None)) for c in cands):
            raise ConfigError("objective.type: detection scores detectors (backbone + SSD head); build them with "
                              "DetectionObjective.assemble_candidates or the detection flow")
        batches = self._batches()
        out, self.per_class = [], []
        for det in cands:
            res = score(det, batches, self.dataset.num_classes, self.dataset.resolution, coco=self.options.coco)
            p = {"map50": float(res["map50"])}
            if self.options.coco:
                p["coco_map"] = float(res["coco_map"])
            self.per_class.append(list(res["ap50_per_class"]))
            out.append(p)
        return out

    def assemble_candidates(self, weights_manager: Any, rollouts: Sequence[Rollout]) -> list[Any]:
        """Detectors of ``rollouts`` on a backbone supernet with one shared SSDLite head
        (default head options, seeded by the objective's seed); kept on the rollouts."""
        import torch

        from hwnas.search.detection.model import DetSupernet
        from hwnas.search.detection.ssd import HeadOptions

        if self._shared is None:
            if self.dataset is None:
                raise ConfigError("dataset: the detection objective needs a dataset section")
            ds = self.dataset.prepare()
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                self._shared = DetSupernet(weights_manager, ds.num_classes, ds.resolution, HeadOptions())
        for r in rollouts:
            r.candidate = self._shared.candidate(r.arch)
        return [r.candidate for r in rollouts]

    def reward(self, perfs: Mapping[str, float]) -> float:
        return float(perfs["map50"])

    def directions(self) -> dict[str, str]:
        return {n: "max" for n in self.perf_names}
