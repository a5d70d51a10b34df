"""A small synthetic detection set, written in both Pascal VOC and COCO layouts.

Why: tests and the CPU demo need a detection set that exists without downloads and is
hard enough that a trivial detector fails. Each image is a textured background (smooth
noise, random stripes) with one to three shapes - ``square``, ``circle``, ``triangle`` -
of random colour, size and place; boxes are the shapes' tight extents. Shapes smaller
than ``difficult_below`` pixels are flagged difficult (VOC) / iscrowd (COCO), so the
ignore path of the metrics is exercised too. The same images and boxes are written as

* ``ROOT/voc``: ``JPEGImages/*.jpg``, ``Annotations/*.xml``, ``ImageSets/Main/{train,val,test}.txt``
* ``ROOT/coco``: ``{train,val,test}/*.jpg`` and ``annotations/instances_{train,val,test}.json``

Generation is seeded: the same arguments give the same files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

CLASSES: tuple[str, ...] = ("circle", "square", "triangle")
SPLIT_FILES: dict[str, str] = {"train": "train", "valid": "val", "test": "test"}


@dataclass(frozen=True)
class SynthSpec:
    """How many images per split, their size and the seed."""

    n_train: int = 240
    n_val: int = 60
    n_test: int = 60
    size: int = 96
    seed: int = 0
    difficult_below: int = 10


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour noise plus stripes: texture that a detector must learn to ignore."""
    from PIL import Image

    coarse = rng.uniform(40, 215, size=(6, 6, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float64)
    img = img.transpose(2, 0, 1)
    yy, xx = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 16)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    img = img + 25 * stripes[None] + rng.normal(0, 8, size=(3, size, size))
    return np.clip(img.transpose(1, 2, 0), 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, size: int, taken: list[tuple[float, ...]]) -> tuple[int, int, int, int] | None:
    """A box (x1, y1, x2, y2) of random side that overlaps no taken box much."""
    from hwnas.search.detection.boxes import np_iou

    for _ in range(20):
        side = int(rng.integers(max(6, size // 12), size // 2))
        aspect = rng.uniform(0.7, 1.4)
        w, h = side, max(6, min(size - 2, int(side * aspect)))
        x1, y1 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        box = (x1, y1, x1 + w, y1 + h)
        if not taken or np_iou(np.array([box], float), np.array(taken, float)).max() < 0.2:
            return box
    return None


def _draw(img: np.ndarray, rng: np.random.Generator, size: int) -> list[tuple[int, int, int, int, int, bool]]:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    objects: list[tuple[int, int, int, int, int, bool]] = []
    for _ in range(int(rng.integers(1, 4))):
        box = _place(rng, size, [o[:4] for o in objects])
        if box is None:
            continue
        label = int(rng.integers(len(CLASSES)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x1, y1, x2, y2 = box
        if CLASSES[label] == "circle":
            draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=colour)
        elif CLASSES[label] == "square":
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=colour)
        else:
            draw.polygon([(x1, y2 - 1), (x2 - 1, y2 - 1), ((x1 + x2 - 1) / 2, y1)], fill=colour)
        objects.append((*box, label, False))
    img[:] = np.asarray(pil)
    return objects


def _voc_xml(stem: str, size: int, objects: list[tuple[int, int, int, int, int, bool]], small: int) -> str:
    parts = [f"<annotation><folder>JPEGImages</folder><filename>{stem}.jpg</filename>",
             f"<size><width>{size}</width><height>{size}</height><depth>3</depth></size>"]
    for x1, y1, x2, y2, label, _ in objects:
        diff = int(min(x2 - x1, y2 - y1) < small)
        parts.append(f"<object><name>{escape(CLASSES[label])}</name><difficult>{diff}</difficult><bndbox>"
                     f"<xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>\n"


def write_synthetic(root: Path | str, spec: SynthSpec = SynthSpec()) -> Path:
    """Write the set under ``root`` (``root/voc`` and ``root/coco``); returns ``root``."""
    from PIL import Image

    root = Path(root)
    voc, coco = root / "voc", root / "coco"
    for d in (voc / "JPEGImages", voc / "Annotations", voc / "ImageSets" / "Main", coco / "annotations"):
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    counts = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    ann_id = 0
    for split, n in counts.items():
        (coco / split).mkdir(exist_ok=True)
        stems, images, anns = [], [], []
        for i in range(n):
            stem = f"{split}_{i:05d}"
            img = _background(rng, spec.size)
            objects = _draw(img, rng, spec.size)
            Image.fromarray(img).save(voc / "JPEGImages" / f"{stem}.jpg", quality=95)
            Image.fromarray(img).save(coco / split / f"{stem}.jpg", quality=95)
            (voc / "Annotations" / f"{stem}.xml").write_text(_voc_xml(stem, spec.size, objects, spec.difficult_below))
            stems.append(stem)
            images.append({"id": i + 1, "file_name": f"{stem}.jpg", "width": spec.size, "height": spec.size})
            for x1, y1, x2, y2, label, _ in objects:
                ann_id += 1
                small = int(min(x2 - x1, y2 - y1) < spec.difficult_below)
                anns.append({"id": ann_id, "image_id": i + 1, "category_id": label + 1, "iscrowd": small,
                             "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(s + "\n" for s in stems))
        cats = [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]
        (coco / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root
