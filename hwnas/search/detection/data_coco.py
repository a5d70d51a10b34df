"""COCO instances JSON reader (``images``, ``annotations``, ``categories``).

COCO boxes are ``[x, y, w, h]`` in continuous pixels; categories get contiguous labels
in the order of their ids. An annotation whose ``image_id`` names no image, a box
outside its image, a ``category_id`` that is not among the file's categories or an
image without width/height stops the read with one line naming the file and the item
(``annotations[i]``), so nothing is dropped silently. When a subset of the categories
is read (``labels``: the dataset's ``classes`` option), annotations of the other known
categories are skipped and counted per category name (``skipped``, and one log line
naming the file); their images stay, with the boxes of the chosen categories only.
``iscrowd`` regions are kept and flagged (ignored when scoring).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hwnas.errors import InputError
from hwnas.search.detection.records import ImageRecord, check_box, make_record

log = logging.getLogger(__name__)


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"dataset.root: {path} not found (COCO layout: annotations/instances_{{split}}.json)")
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key) if isinstance(data, dict) else None, list):
            raise InputError(f"{path}: missing list {key!r} (COCO instances format)")
    return data


def coco_categories(path: Path) -> list[tuple[int, str]]:
    """(id, name) of each category, sorted by id."""
    cats = _load(path)["categories"]
    try:
        return sorted((int(c["id"]), str(c["name"])) for c in cats)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: categories: each needs an integer id and a name") from None


def _images(path: Path, data: dict[str, Any], image_dir: Path) -> dict[int, tuple[Path, int, int]]:
    out = {}
    for i, im in enumerate(data["images"]):
        try:
            iid, w, h, name = int(im["id"]), int(im["width"]), int(im["height"]), str(im["file_name"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: images[{i}]: needs id, file_name, width and height") from None
        if iid in out:
            raise InputError(f"{path}: images[{i}]: id {iid} appears twice")
        out[iid] = (image_dir / name, w, h)
    return out


def read_coco(path: Path, image_dir: Path, labels: dict[int, int] | None = None,
              skipped: dict[str, int] | None = None) -> list[ImageRecord]:
    """Every image of one instances file, in the order of its ``images`` list; annotations
    of known categories outside ``labels`` are counted into ``skipped`` (by name)."""
    data = _load(path)
    where = str(path)
    labels = labels or {cid: k for k, (cid, _) in enumerate(coco_categories(path))}
    names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    images = _images(path, data, image_dir)
    rows: dict[int, list[tuple[float, float, float, float, int, bool, str]]] = {iid: [] for iid in images}
    counts: dict[str, int] = {}
    for i, ann in enumerate(data["annotations"]):
        item = f"annotations[{i}]"
        try:
            iid, cid = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: {item}: needs image_id, category_id and bbox [x, y, w, h]") from None
        if iid not in images:
            raise InputError(f"{where}: {item}: image_id {iid} is not among the images' ids")
        if cid not in names:
            raise InputError(f"{where}: {item}: category_id {cid} is not one of the categories {sorted(names)}")
        if cid not in labels:  # a category left out by the classes subset
            counts[names[cid]] = counts.get(names[cid], 0) + 1
            continue
        _, iw, ih = images[iid]
        check_box(where, item, (x, y, x + w, y + h), iw, ih)
        rows[iid].append((x, y, x + w, y + h, labels[cid], bool(ann.get("iscrowd", 0)), names.get(cid, str(cid))))
    for k, v in counts.items():
        if skipped is not None:
            skipped[k] = skipped.get(k, 0) + v
    if counts:
        log.info("%s: skipped %d annotations of categories outside dataset.classes (%s)", where,
                 sum(counts.values()), ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return [make_record(p, w, h, rows[iid], iid) for iid, (p, w, h) in images.items()]
