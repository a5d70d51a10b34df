"""SSD pieces: priors, matching, encoding, hard-negative loss, NMS, backbone taps, export."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwnas.search.detection.boxes import cxcywh_to_xyxy, decode, encode
from hwnas.search.detection.loss import match, multibox_loss
from hwnas.search.detection.nms import batched_nms, nms
from hwnas.search.detection.priors import make_priors
from tests.search.det_export import exported_matches_shared


def test_priors_follow_the_ssd_layout() -> None:
    pri = make_priors([4, 2, 1], [[2.0], [2.0, 3.0], [2.0]], s_min=0.2, s_max=0.9)
    assert len(pri) == 16 * 4 + 4 * 6 + 1 * 4
    s1, s2 = 0.2, 0.55
    first = pri[:4]  # cell (0, 0) of the 4x4 map: square s1, square sqrt(s1 s2), then 2:1 and 1:2
    torch.testing.assert_close(first[0], torch.tensor([0.125, 0.125, s1, s1]))
    torch.testing.assert_close(first[1], torch.tensor([0.125, 0.125, math.sqrt(s1 * s2), math.sqrt(s1 * s2)]))
    torch.testing.assert_close(first[2], torch.tensor([0.125, 0.125, s1 * math.sqrt(2), s1 / math.sqrt(2)]))
    torch.testing.assert_close(first[3], torch.tensor([0.125, 0.125, s1 / math.sqrt(2), s1 * math.sqrt(2)]))
    assert torch.allclose(pri[4, :2], torch.tensor([0.375, 0.125]))  # row-major: next cell is to the right
    last = pri[-4:]  # the 1x1 map: scale 0.9 and sqrt(0.9 * 1)
    torch.testing.assert_close(last[1, 2:], torch.tensor([math.sqrt(0.9), math.sqrt(0.9)]))


def test_encode_decode_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    priors = torch.cat([torch.rand(50, 2, generator=g), 0.05 + 0.5 * torch.rand(50, 2, generator=g)], 1)
    boxes = cxcywh_to_xyxy(torch.cat([torch.rand(50, 2, generator=g), 0.05 + 0.5 * torch.rand(50, 2, generator=g)], 1))
    torch.testing.assert_close(decode(encode(boxes, priors), priors), boxes, atol=1e-5, rtol=1e-5)


def test_every_object_gets_its_best_prior_even_below_the_threshold() -> None:
    priors = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 0.1, 0.1]])
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5],  # exactly prior 0
                       [0.45, 0.45, 0.6, 0.6]])  # IoU 0.44 with prior 2 only: below 0.5, still matched
    cls, boxes = match(gt, torch.tensor([1, 0]), priors)
    assert cls.tolist() == [2, 0, 1]
    torch.testing.assert_close(boxes[2], gt[1])


def test_hard_negatives_are_three_per_positive() -> None:
    """Uniform logits: every prior's cross-entropy is log(C + 1), so the class loss per
    positive is (1 positive + 3 negatives) * log(C + 1)."""
    priors = make_priors([4], [[2.0]])
    target = {"boxes": cxcywh_to_xyxy(priors[:1]).clamp(0, 1), "labels": torch.tensor([1]),
              "difficult": torch.tensor([False])}
    n_cls = 4
    loc = torch.zeros(1, len(priors), 4)
    conf = torch.zeros(1, len(priors), n_cls)
    out = multibox_loss(loc, conf, priors, [target])
    pos = int(out["positives"])
    assert pos >= 1
    assert float(out["cls"]) == pytest.approx(4 * math.log(n_cls), rel=1e-5)
    flagged = dict(target, difficult=torch.tensor([True]))  # difficult objects are not trained on
    assert int(multibox_loss(loc, conf, priors, [flagged])["positives"]) == 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _brute_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float) -> list[int]:
    """The greedy rule written out: best first, keep unless it overlaps a kept box of its class."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: -scores[k]):
        if all(classes[j] != classes[i] or _iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_batched_nms_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (120, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (120, 2))], 1)
    scores, classes = rng.permutation(120) / 120.0, rng.integers(0, 3, 120)
    got = batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(classes), 0.45).tolist()
    assert got == _brute_nms(boxes, scores, classes, 0.45)
    one = nms(torch.tensor(boxes), torch.tensor(scores), 0.45).tolist()
    assert one == _brute_nms(boxes, scores, np.zeros(120, int), 0.45)


SPACES = {"mbv2": ({"resolution": 48}, "supernet"), "mbv3": ({"resolutions": [48]}, "mbv3_supernet")}


def _small_supernet(kind: str = "mbv2") -> tuple[object, object]:
    from hwnas.config import parse_component
    from hwnas.search.build import build_component
    from hwnas.search.detection.model import DetSupernet
    from hwnas.search.detection.ssd import HeadOptions

    res, wm_type = SPACES[kind]
    space = parse_component("search_space", {"type": kind, **res, "width": 0.35, "num_classes": 3,
                                             "depths": [1, 2], "expansions": [3, 6], "kernels": [3, 5]}).build()
    wm = build_component(parse_component("weights_manager", {"type": wm_type}), space=space, seed=0)
    torch.manual_seed(0)
    return space, DetSupernet(wm, 3, 48, HeadOptions(extra_channels=(32, 16)))


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_exported_detector_computes_what_the_shared_weights_compute(kind: str) -> None:
    space, net = _small_supernet(kind)
    x, cand, exported = exported_matches_shared(space, net, 48, warm_steps=4)
    with torch.no_grad():
        loc_a, conf_a = cand(x)
    assert loc_a.shape == (3, len(net.priors), 4) and conf_a.shape == (3, len(net.priors), 4)
    dets = exported.detect(x)
    assert len(dets) == 3 and all(d["boxes"].shape[1] == 4 and len(d["boxes"]) <= 100 for d in dets)


def test_detector_primitives_are_what_runs() -> None:
    """The priced items build, chained, the maps the head reads: the backbone's last item
    produces the last tapped map and the head lists one depthwise + two predictors per map."""
    from hwnas.search.detection.model import detector_primitives

    space, net = _small_supernet()
    arch = space.sample(np.random.default_rng(3))
    prims = detector_primitives(space, arch, 3, 48, net.options)
    n_maps = 3 + 2
    depth = sum(len(c) for c in net.wm.config_of(arch))  # mbv2: stage choices
    assert len(prims) == 2 + depth + 2 + 3 * 2 + 3 * n_maps
    assert [p.op for p in prims[-3:]] == ["dwconv", "conv", "conv"]
    with torch.no_grad():
        feats = net.export(arch).backbone(torch.zeros(1, 3, 48, 48))
    last_backbone = prims[2 + depth + 1]
    assert feats[-1].shape[1:] == (last_backbone.c_out, last_backbone.h, last_backbone.w)
