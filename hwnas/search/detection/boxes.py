"""Box arithmetic shared by matching, NMS, augmentation and metrics.

Boxes are ``(x1, y1, x2, y2)`` rows, in pixels or normalised to [0, 1] (the caller
knows which); priors are ``(cx, cy, w, h)``. Encoding follows SSD: offsets of the
centre in units of the prior's size divided by the first variance, log size ratios
divided by the second.
"""
from __future__ import annotations

import numpy as np
import torch

VARIANCES: tuple[float, float] = (0.1, 0.2)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of ``a`` (N x 4) and ``b`` (M x 4) xyxy boxes: an N x M matrix."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def np_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`box_iou` for numpy arrays (augmentation and metrics work in numpy)."""
    return box_iou(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)).numpy()


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], -1)


def encode(boxes: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Regression targets of xyxy ``boxes`` against their matched cxcywh ``priors``."""
    c = xyxy_to_cxcywh(boxes)
    wh = c[..., 2:].clamp(min=1e-6)
    return torch.cat([(c[..., :2] - priors[..., :2]) / (variances[0] * priors[..., 2:]),
                      torch.log(wh / priors[..., 2:]) / variances[1]], -1)


def decode(loc: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Inverse of :func:`encode`: xyxy boxes from predicted offsets."""
    centre = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    wh = priors[..., 2:] * torch.exp((loc[..., 2:] * variances[1]).clamp(max=8.0))
    return cxcywh_to_xyxy(torch.cat([centre, wh], -1))
