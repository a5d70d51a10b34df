"""The annotation record every detection format is read into.

VOC XML and COCO JSON describe the same thing - an image file, its size and a list of
labelled boxes, some of them to be ignored when scoring (VOC ``difficult``, COCO
``iscrowd``) - so both readers produce :class:`ImageRecord` lists and everything
downstream (augmentation, loaders, metrics) is format-free. Boxes are continuous pixel
coordinates ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2 <= width``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.errors import InputError


@dataclass(frozen=True)
class ImageRecord:
    """One annotated image: where it is, its size, its boxes, labels and ignore flags."""

    image: Path
    width: int
    height: int
    boxes: np.ndarray  # N x 4 float32, pixels, xyxy
    labels: np.ndarray  # N int64 in [0, num_classes)
    difficult: np.ndarray  # N bool: ignored by the metrics (VOC difficult, COCO iscrowd)
    image_id: int = 0
    names: tuple[str, ...] = field(default=())  # class name of each box (for messages)

    @property
    def n(self) -> int:
        return int(len(self.labels))


def check_box(where: str, item: str, box: tuple[float, float, float, float], width: int, height: int) -> None:
    """One line naming ``where`` (file) and ``item`` unless the box lies inside the image
    with positive width and height (the readers' shared rule)."""
    x1, y1, x2, y2 = box
    if not all(np.isfinite(v) for v in box):
        raise InputError(f"{where}: {item}: box {box} has a non-finite coordinate")
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"{where}: {item}: box {tuple(round(v, 2) for v in box)} is empty (needs x1 < x2, y1 < y2)")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise InputError(f"{where}: {item}: box {tuple(round(v, 2) for v in box)} lies outside the "
                         f"{width}x{height} image")


def make_record(image: Path, width: int, height: int, rows: list[tuple[float, float, float, float, int, bool, str]],
                image_id: int) -> ImageRecord:
    """An :class:`ImageRecord` from ``(x1, y1, x2, y2, label, difficult, name)`` rows."""
    boxes = np.array([r[:4] for r in rows], dtype=np.float32).reshape(-1, 4)
    return ImageRecord(image, int(width), int(height), boxes, np.array([r[4] for r in rows], dtype=np.int64),
                       np.array([r[5] for r in rows], dtype=bool), image_id, tuple(r[6] for r in rows))
