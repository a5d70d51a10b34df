"""Detection metrics: VOC mAP@0.5 and COCO mAP@[.5:.95].

VOC AP follows the devkit's rules (VOC2010+): detections of a class in decreasing score
order; each takes the unmatched ground-truth box of its image it overlaps most; IoU >=
0.5 on a ``difficult`` box is neither a hit nor a miss, on a box already taken is a
false positive (a duplicate); AP is the area under the precision envelope at every
recall step (all-point interpolation). Coordinates are continuous (no devkit "+1").
COCO AP comes from pycocotools (extra ``detection``): ten IoU thresholds and 101 recall
points; ``difficult`` boxes go in as ``iscrowd`` (COCO's own ignore regions).

Inputs, both per image in the same order: detections ``{"boxes", "scores", "labels"}``
and ground truth ``{"boxes", "labels", "difficult"}``, boxes xyxy in one coordinate frame.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np

from hwnas.errors import DependencyError
from hwnas.search.detection.boxes import np_iou


def _np(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (VOC2010+ all-point interpolation)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def class_ap(dets: Sequence[dict[str, Any]], gts: Sequence[dict[str, Any]], c: int, iou: float = 0.5) -> float:
    """AP of class ``c`` (NaN when the class has no non-difficult ground truth)."""
    gt_boxes = [_np(g["boxes"])[_np(g["labels"]) == c] for g in gts]
    gt_diff = [_np(g["difficult"]).astype(bool)[_np(g["labels"]) == c] for g in gts]
    npos = int(sum((~d).sum() for d in gt_diff))
    rows = [(float(s), i, _np(d["boxes"])[j]) for i, d in enumerate(dets)
            for j, s in enumerate(_np(d["scores"])) if int(_np(d["labels"])[j]) == c]
    if npos == 0:
        return float("nan")
    rows.sort(key=lambda r: -r[0])
    taken = [np.zeros(len(b), dtype=bool) for b in gt_boxes]
    tp, fp = np.zeros(len(rows)), np.zeros(len(rows))
    for k, (_, i, box) in enumerate(rows):
        if len(gt_boxes[i]) == 0:
            fp[k] = 1
            continue
        ov = np_iou(box[None].astype(np.float64), gt_boxes[i].astype(np.float64))[0]
        j = int(ov.argmax())
        if ov[j] >= iou:
            if gt_diff[i][j]:
                continue
            if not taken[i][j]:
                tp[k], taken[i][j] = 1, True
            else:
                fp[k] = 1
        else:
            fp[k] = 1
    tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
    recall = tp_c / npos
    precision = tp_c / np.maximum(tp_c + fp_c, np.finfo(np.float64).eps)
    return voc_ap(recall, precision)


def voc_map(dets: Sequence[dict[str, Any]], gts: Sequence[dict[str, Any]], num_classes: int,
            iou: float = 0.5) -> tuple[float, list[float]]:
    """(mean AP over classes that have ground truth, AP per class with NaN for the others)."""
    aps = [class_ap(dets, gts, c, iou) for c in range(num_classes)]
    valid = [a for a in aps if not np.isnan(a)]
    return (float(np.mean(valid)) if valid else 0.0), aps


def coco_map(dets: Sequence[dict[str, Any]], gts: Sequence[dict[str, Any]], num_classes: int,
             scale: float = 1.0) -> dict[str, Any]:
    """pycocotools' COCOeval on boxes multiplied by ``scale`` (normalised -> pixels):
    ``map`` (@[.5:.95]), ``map50``, ``map75`` and ``per_class`` (@[.5:.95], NaN without
    ground truth)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise DependencyError("COCO mAP needs pycocotools: pip install 'hwnas[detection]'") from None
    images, anns, results = [], [], []
    for i, (d, g) in enumerate(zip(dets, gts)):
        images.append({"id": i + 1, "width": scale, "height": scale})
        for b, lab, diff in zip(_np(g["boxes"]) * scale, _np(g["labels"]), _np(g["difficult"])):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(lab) + 1, "iscrowd": int(diff),
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h})
        for b, s, lab in zip(_np(d["boxes"]) * scale, _np(d["scores"]), _np(d["labels"])):
            results.append({"image_id": i + 1, "category_id": int(lab) + 1, "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if not results:
            return {"map": 0.0, "map50": 0.0, "map75": 0.0, "per_class": [0.0] * num_classes}
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # IoU x recall x class, area all, 100 detections
    per_class = []
    for c in range(num_classes):
        v = prec[:, :, c]
        per_class.append(float(v[v > -1].mean()) if (v > -1).any() else float("nan"))
    return {"map": max(0.0, float(ev.stats[0])), "map50": max(0.0, float(ev.stats[1])),
            "map75": max(0.0, float(ev.stats[2])), "per_class": per_class}
