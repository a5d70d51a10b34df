"""mAP on hand-computed cases: VOC all-point AP, COCO's 101-point AP (pycocotools)."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from hwnas.search.detection.metrics import coco_map, voc_map

GT = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [40.0, 0.0, 50.0, 10.0]]),
       "labels": torch.tensor([0, 0, 0]), "difficult": torch.tensor([False, False, True])}]


def _dets(rows: list[tuple[list[float], float]]) -> list[dict[str, torch.Tensor]]:
    return [{"boxes": torch.tensor([r[0] for r in rows]), "scores": torch.tensor([r[1] for r in rows]),
             "labels": torch.zeros(len(rows), dtype=torch.long)}]


def test_voc_ap_on_a_hand_computed_case() -> None:
    """hit A (0.9), duplicate of A (0.8), on the difficult box (0.7), hit B at IoU exactly 0.5
    (0.6): TP, FP, ignored, TP -> precision/recall (1, .5), (.5, .5), (2/3, 1): AP = .5 + .5 * 2/3.
    Counting the difficult hit as FP gives .75; npos = 3 gives 0.444; IoU > .5 (not >=) 0.5."""
    dets = _dets([([0, 0, 10, 10], 0.9), ([0, 0, 10, 10], 0.8), ([40, 0, 50, 10], 0.7),
                  ([20, 20, 30, 40], 0.6)])  # 100 / 200: IoU exactly 0.5 with B -> a hit (VOC: >=)
    m, per_class = voc_map(dets, GT, 1)
    assert m == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert per_class == [pytest.approx(m)]


def test_voc_ap_ignores_classes_without_ground_truth() -> None:
    dets = _dets([([0, 0, 10, 10], 0.9)])
    dets[0]["labels"] = torch.tensor([1])  # a class-1 detection; class 1 has no ground truth
    m, per_class = voc_map(dets, GT, 2)
    assert per_class[0] == 0.0 and per_class[1] != per_class[1]  # NaN
    assert m == 0.0


@pytest.mark.skipif(importlib.util.find_spec("pycocotools") is None, reason="needs the detection extra")
def test_coco_ap_on_a_hand_computed_case() -> None:
    """Without the duplicate: TP, ignored (iscrowd), TP at IoU 2/3. COCO's 101 recall
    points: precision 1 up to recall 1 -> AP = 1 at thresholds .5 .. .65 (four of ten); from
    .7 on B's hit is lost, recall stops at .5: 51 of 101 points -> AP@[.5:.95] = (4 + 6 * 51/101) / 10."""
    dets = _dets([([0, 0, 10, 10], 0.9), ([40, 0, 50, 10], 0.7), ([20, 20, 30, 35], 0.6)])
    res = coco_map(dets, GT, 1)
    assert res["map50"] == pytest.approx(1.0)
    assert res["map"] == pytest.approx((4 + 6 * 51 / 101) / 10)
    assert res["per_class"] == [pytest.approx(res["map"])]
