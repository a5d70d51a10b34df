"""SSD training targets and loss: matching, encoding, hard-negative mining.

Matching (SSD section 2.2): each ground-truth box takes its best prior (so every object
has at least one), then every prior takes the box it overlaps most if that IoU reaches
``iou_threshold`` (0.5); other priors are background. Boxes flagged difficult are left
out of training, as in the reference implementation. The loss is smooth-L1 on the
encoded offsets of positive priors plus cross-entropy on positives and the hardest
negatives (at most ``neg_pos`` per positive, ranked by their background loss), both
divided by the number of positives.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from hwnas.search.detection.boxes import box_iou, cxcywh_to_xyxy, encode


def match(gt_boxes: torch.Tensor, gt_labels: torch.Tensor, priors: torch.Tensor,
          iou_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(class target per prior, 0 = background; matched xyxy box per prior)."""
    n = len(priors)
    if len(gt_boxes) == 0:
        return torch.zeros(n, dtype=torch.long, device=priors.device), torch.zeros(n, 4, device=priors.device)
    iou = box_iou(gt_boxes, cxcywh_to_xyxy(priors))  # G x P
    best_gt_iou, best_gt = iou.max(0)
    best_prior = iou.argmax(1)
    for g, p in enumerate(best_prior.tolist()):  # every object keeps its best prior
        best_gt[p] = g
        best_gt_iou[p] = 2.0
    cls = gt_labels[best_gt] + 1
    cls[best_gt_iou < iou_threshold] = 0
    return cls, gt_boxes[best_gt]


def targets_for(targets: Sequence[dict[str, Any]], priors: torch.Tensor,
                iou_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched :func:`match` + :func:`encode`: (B x P class targets, B x P x 4 offsets)."""
    classes, locs = [], []
    for t in targets:
        keep = ~t["difficult"].to(priors.device)
        cls, boxes = match(t["boxes"].to(priors.device)[keep], t["labels"].to(priors.device)[keep], priors,
                           iou_threshold)
        classes.append(cls)
        locs.append(encode(boxes, priors))
    return torch.stack(classes), torch.stack(locs)


def multibox_loss(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor, targets: Sequence[dict[str, Any]],
                  neg_pos: int = 3, iou_threshold: float = 0.5) -> dict[str, torch.Tensor]:
    """``loss`` (the sum to minimise), ``loc`` and ``cls`` parts, ``positives``."""
    cls_t, loc_t = targets_for(targets, priors, iou_threshold)
    pos = cls_t > 0
    n_pos = pos.sum()
    loc_loss = F.smooth_l1_loss(loc[pos], loc_t[pos], reduction="sum")
    ce = F.cross_entropy(conf.reshape(-1, conf.shape[-1]), cls_t.reshape(-1), reduction="none").reshape(cls_t.shape)
    with torch.no_grad():
        mining = ce.clone()
        mining[pos] = 0.0
        rank = mining.argsort(1, descending=True).argsort(1)
        n_neg = (neg_pos * pos.sum(1, keepdim=True)).clamp(max=pos.shape[1] - 1)
        neg = rank < n_neg
    cls_loss = ce[pos | neg].sum()
    denom = n_pos.clamp(min=1).float()
    return {"loss": (loc_loss + cls_loss) / denom, "loc": loc_loss / denom, "cls": cls_loss / denom,
            "positives": n_pos}
