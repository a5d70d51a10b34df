"""Detection augmentation in numpy: the image and its boxes move together.

SSD's training recipe, in its order: photometric distortion (brightness, contrast,
saturation) -> expand (zoom out: the image on a larger canvas of the mean colour) ->
IoU crop (zoom in: a random patch whose IoU with some box reaches a drawn minimum; boxes
whose centre falls outside are dropped, the others clipped) -> horizontal flip -> resize.
Every random draw comes from a generator seeded by (loader seed, item index), so an
epoch's augmented batches are the same whatever the number of workers. Resizing (to
the dataset's resolution) applies to every split; the random steps to training only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.config import opt
from hwnas.search.detection.boxes import np_iou

#: SSD's minimum-IoU choices for the random crop (None: keep the whole image).
CROP_MIN_IOUS: tuple[float | None, ...] = (None, 0.1, 0.3, 0.5, 0.7, 0.9, -1.0)


@dataclass(frozen=True)
class DetAugmentOptions:
    """``dataset.augment`` of detection sets (all off by default; SSD's recipe turns all on)."""

    photometric: bool = opt(False, help="random brightness, contrast and saturation")
    expand: float = opt(1.0, min=1.0, max=8.0, help="largest zoom-out ratio (canvas side / image side; 1 = off; SSD: 4)")
    iou_crop: bool = opt(False, help="SSD's random crop with a minimum IoU against the boxes")
    hflip: bool = opt(False, help="horizontal flip with probability 1/2")

    @property
    def any(self) -> bool:
        return self.photometric or self.expand > 1.0 or self.iou_crop or self.hflip


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness shift, contrast and saturation scaling, each with probability 1/2."""
    img = img.astype(np.float32)
    if rng.random() < 0.5:
        img = img + rng.uniform(-32, 32)
    if rng.random() < 0.5:
        img = img * rng.uniform(0.5, 1.5)
    if rng.random() < 0.5:
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.5, 1.5)
    return np.clip(img, 0, 255)


def expand(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, max_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """With probability 1/2, the image at a random place on a canvas up to ``max_ratio`` larger."""
    if max_ratio <= 1.0 or rng.random() < 0.5:
        return img, boxes
    h, w, c = img.shape
    ratio = rng.uniform(1.0, max_ratio)
    H, W = int(h * ratio), int(w * ratio)
    top, left = int(rng.uniform(0, H - h)), int(rng.uniform(0, W - w))
    canvas = np.empty((H, W, c), dtype=np.float32)
    canvas[:] = img.reshape(-1, c).mean(0)
    canvas[top:top + h, left:left + w] = img
    return canvas, boxes + np.array([left, top, left, top], dtype=np.float32)


def iou_crop(img: np.ndarray, boxes: np.ndarray, keep: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSD's sampler: draw a minimum IoU, then up to 50 patches (sides 0.3..1 of the image,
    aspect 1/2..2) until one reaches it with some box and keeps at least one box centre.
    Returns the patch, the kept boxes (clipped, shifted) and the kept row indices."""
    h, w = img.shape[:2]
    while True:
        min_iou = CROP_MIN_IOUS[int(rng.integers(len(CROP_MIN_IOUS)))]
        if min_iou is None or len(boxes) == 0:
            return img, boxes, keep
        for _ in range(50):
            cw, ch = rng.uniform(0.3 * w, w), rng.uniform(0.3 * h, h)
            if not 0.5 <= ch / cw <= 2.0:
                continue
            x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
            patch = np.array([[x0, y0, x0 + cw, y0 + ch]], dtype=np.float32)
            if np_iou(patch, boxes).max() < min_iou:
                continue
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            inside = ((centres > patch[0, :2]) & (centres < patch[0, 2:])).all(1)
            if not inside.any():
                continue
            x0i, y0i, x1i, y1i = int(x0), int(y0), int(np.ceil(x0 + cw)), int(np.ceil(y0 + ch))
            kept = boxes[inside].copy()
            kept[:, :2] = np.maximum(kept[:, :2], [x0i, y0i])
            kept[:, 2:] = np.minimum(kept[:, 2:], [x1i, y1i])
            kept -= np.array([x0i, y0i, x0i, y0i], dtype=np.float32)
            return img[y0i:y1i, x0i:x1i], kept, keep[inside]


def hflip(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if rng.random() < 0.5:
        return img, boxes
    w = img.shape[1]
    out = boxes.copy()
    out[:, 0], out[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    return img[:, ::-1], out


def augment(img: np.ndarray, boxes: np.ndarray, o: DetAugmentOptions,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random steps on an H x W x C image and its pixel boxes; returns the image,
    the boxes and the indices of the original boxes that survive (crops drop some)."""
    keep = np.arange(len(boxes))
    img = img.astype(np.float32)
    if o.photometric:
        img = photometric(img, rng)
    img, boxes = expand(img, boxes, rng, o.expand)
    if o.iou_crop:
        img, boxes, keep = iou_crop(img, boxes, keep, rng)
    if o.hflip:
        img, boxes = hflip(img, boxes, rng)
    return np.ascontiguousarray(img), boxes.astype(np.float32), keep
