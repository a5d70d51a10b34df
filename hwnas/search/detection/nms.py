"""Non-maximum suppression written in torch (torchvision's compiled ops do not load here).

:func:`nms` is the greedy rule: take the highest score, drop every remaining box whose
IoU with it exceeds the threshold, repeat. :func:`batched_nms` runs it per class at once
by shifting each class's boxes by a class-dependent offset larger than any coordinate,
so boxes of different classes never overlap (the usual trick); the IoU matrix is built
once and the greedy pass walks it, so the cost is one K x K matrix for K candidates
(callers cap K with a top-k before).
"""
from __future__ import annotations

import torch

from hwnas.search.detection.boxes import box_iou


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the kept boxes, by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    over = box_iou(boxes[order], boxes[order]) > iou_threshold
    over_cpu, keep_list = over.cpu(), []
    alive = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep_list.append(i)
        alive &= ~over_cpu[i]
        alive[i] = False
    return order[torch.tensor(keep_list, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """:func:`nms` within each class (boxes of different classes never suppress each other)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offset = (boxes.max() - boxes.min() + 1) * classes.to(boxes.dtype)
    return nms(boxes + offset[:, None], scores, iou_threshold)
