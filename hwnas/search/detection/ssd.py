"""SSDLite head over backbone feature maps, and the detector it makes.

SSDLite (MobileNetV2 paper, section 6.3): SSD's prediction layers with every 3x3
convolution replaced by a depthwise-separable pair (depthwise 3x3 + BN + ReLU6, then a
1x1 predictor), and extra feature layers that halve the resolution with a 1x1 reduce,
a depthwise 3x3 stride-2 and a 1x1 expand. The head's layers are built from
:class:`~hwnas.primitives.Primitive` records by the same builders as the backbones, so
:func:`head_primitives` lists exactly what runs, and a cost source prices the head like
any other network (``conv`` / ``dwconv`` items); the 1x1 predictors are plain biased
convolutions, priced as ``conv`` with no activation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.config import opt
from hwnas.nn.builders import build_primitive
from hwnas.primitives import Primitive
from hwnas.search.detection.boxes import decode
from hwnas.search.detection.nms import batched_nms
from hwnas.search.detection.priors import make_priors, priors_per_cell


@dataclass(frozen=True)
class HeadOptions:
    """``detector.head``: the SSDLite head, its priors and post-processing."""

    extra_channels: tuple[int, ...] = opt((128, 64), help="output channels of each extra (stride-2) feature layer")
    ratios: tuple[float, ...] = opt((2.0,), help="aspect ratios of the priors besides the two squares (SSD: 2, 3)")
    s_min: float = opt(0.2, gt=0.0, lt=1.0, help="scale of the first feature map's priors (SSD300: 0.2)")
    s_max: float = opt(0.9, gt=0.0, max=1.0, help="scale of the last feature map's priors (SSD300: 0.9)")
    score_threshold: float = opt(0.01, min=0.0, lt=1.0, help="detections below this class score are dropped")
    nms_iou: float = opt(0.45, gt=0.0, max=1.0, help="IoU above which NMS suppresses a box of the same class")
    top_k: int = opt(200, min=1, help="candidates per class before NMS")
    max_detections: int = opt(100, min=1, help="detections kept per image after NMS")


def map_sizes(resolution: int, strides: Sequence[int], n_extra: int) -> list[int]:
    """Side of each feature map: the backbone's at its strides, then halving (ceil) per extra layer."""
    sizes = [-(-resolution // s) for s in strides]
    for _ in range(n_extra):
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def head_primitives(channels: Sequence[int], sizes: Sequence[int], num_classes: int,
                    o: HeadOptions) -> tuple[list[list[Primitive]], list[tuple[Primitive, Primitive, Primitive]]]:
    """(extra layers as lists of primitives; per map: depthwise, class and box predictor)."""
    a = priors_per_cell(o.ratios)
    extras, c = [], channels[-1]
    for k, c_out in enumerate(o.extra_channels):
        r, mid = sizes[len(channels) - 1 + k], max(8, c_out // 2)
        r2 = sizes[len(channels) + k]
        extras.append([Primitive("conv", c, mid, r, r, kernel=1, act="relu6"),
                       Primitive("dwconv", mid, mid, r, r, kernel=3, stride=2, act="relu6"),
                       Primitive("conv", mid, c_out, r2, r2, kernel=1, act="relu6")])
        c = c_out
    preds = []
    for c_in, r in zip([*channels, *o.extra_channels], sizes):
        preds.append((Primitive("dwconv", c_in, c_in, r, r, kernel=3, act="relu6"),
                      Primitive("conv", c_in, a * (num_classes + 1), r, r, kernel=1, act="none"),
                      Primitive("conv", c_in, a * 4, r, r, kernel=1, act="none")))
    return extras, preds


class SSDLiteHead(nn.Module):
    """Extra layers + depthwise-separable class and box predictors; ``forward(features)``
    returns ``(loc B x P x 4, conf B x P x (C + 1))`` in the priors' order."""

    def __init__(self, channels: Sequence[int], sizes: Sequence[int], num_classes: int, o: HeadOptions) -> None:
        super().__init__()
        self.num_classes = num_classes
        extras, preds = head_primitives(channels, sizes, num_classes, o)
        self.primitives = [p for e in extras for p in e] + [p for t in preds for p in t]
        self.extras = nn.ModuleList(nn.Sequential(*(build_primitive(p) for p in e)) for e in extras)
        self.dw = nn.ModuleList(build_primitive(dw) for dw, _, _ in preds)
        self.cls = nn.ModuleList(nn.Conv2d(c.c_in, c.c_out, 1) for _, c, _ in preds)
        self.box = nn.ModuleList(nn.Conv2d(b.c_in, b.c_out, 1) for _, _, b in preds)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = list(features)
        for extra in self.extras:
            feats.append(extra(feats[-1]))
        locs, confs = [], []
        for f, dw, cls, box in zip(feats, self.dw, self.cls, self.box):
            h = dw(f)
            locs.append(box(h).permute(0, 2, 3, 1).reshape(len(f), -1, 4))
            confs.append(cls(h).permute(0, 2, 3, 1).reshape(len(f), -1, self.num_classes + 1))
        return torch.cat(locs, 1), torch.cat(confs, 1)


class Detector(nn.Module):
    """A backbone that returns feature maps, an SSDLite head and its priors.

    ``backbone(x)`` must return the list of feature maps (strides increasing);
    ``forward`` gives raw ``(loc, conf)``, :meth:`detect` post-processed detections.
    """

    def __init__(self, backbone: Callable[[torch.Tensor], list[torch.Tensor]] | nn.Module, head: SSDLiteHead,
                 priors: torch.Tensor, options: HeadOptions) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.options = options
        self.register_buffer("priors", priors, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))

    @torch.no_grad()
    def detect(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (xyxy in [0, 1]), ``scores``, ``labels`` (0-based classes)."""
        loc, conf = self(x)
        return postprocess(loc.float(), conf.float(), self.priors, self.options)


def postprocess(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor, o: HeadOptions) -> list[dict[str, Any]]:
    """Decode, threshold, top-k per class, batched NMS, keep the best ``max_detections``."""
    out = []
    probs = F.softmax(conf, -1)
    for b in range(len(loc)):
        boxes = decode(loc[b], priors).clamp(0.0, 1.0)
        cand_boxes, cand_scores, cand_labels = [], [], []
        for c in range(1, probs.shape[-1]):
            s = probs[b, :, c]
            idx = torch.nonzero(s > o.score_threshold).flatten()
            if len(idx) > o.top_k:
                idx = idx[s[idx].topk(o.top_k).indices]
            cand_boxes.append(boxes[idx])
            cand_scores.append(s[idx])
            cand_labels.append(torch.full((len(idx),), c - 1, dtype=torch.long, device=loc.device))
        bx, sc, lb = torch.cat(cand_boxes), torch.cat(cand_scores), torch.cat(cand_labels)
        keep = batched_nms(bx, sc, lb, o.nms_iou)[: o.max_detections]
        out.append({"boxes": bx[keep], "scores": sc[keep], "labels": lb[keep]})
    return out


def build_head(channels: Sequence[int], strides: Sequence[int], resolution: int, num_classes: int,
               o: HeadOptions) -> tuple[SSDLiteHead, torch.Tensor]:
    """The head for a backbone's feature channels and strides, and the matching priors."""
    sizes = map_sizes(resolution, strides, len(o.extra_channels))
    ratios = [o.ratios] * len(sizes)
    return SSDLiteHead(channels, sizes, num_classes, o), make_priors(sizes, ratios, o.s_min, o.s_max)
