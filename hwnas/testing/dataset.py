"""Contract suite of the ``dataset`` role (see hwnas/search/datasets/base.py).

Datasets feed training, scoring and BN recalibration; what those loops assume is
checked on the dataset's example (generated files where it reads files): shapes and
dtypes of batches, labels in range, every example served once per pass, and the same
seed giving the same split and the same shuffled order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search.datasets.base import SPLITS, Dataset
from hwnas.testing._common import ContractError, expect
from hwnas.testing._search import example_config

ROLE = "dataset"
BATCH = 5


def build(name: str, tmp_dir: Path, seed: int | None = None) -> Dataset:
    from hwnas.errors import HwnasError
    from hwnas.search.build import build_component

    cfg = example_config(ROLE, name, tmp_dir)
    try:
        ds = build_component(cfg[ROLE], seed=cfg.seed if seed is None else seed)
        expect(isinstance(ds, Dataset), ROLE, name, "must subclass hwnas.search.datasets.base.Dataset")
        expect(ds.prepare() is ds, ROLE, name, "prepare() must return the dataset")
    except HwnasError as exc:
        raise ContractError(f"{ROLE} {name!r}: cannot load its example: {exc}") from None
    return ds


def epoch(ds: Dataset, split: str, shuffle: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of one pass over ``split``, in loader order."""
    xs, ys = [], []
    for x, y in ds.loader(split, batch_size=BATCH, shuffle=shuffle, seed=seed):
        xs.append(np.asarray(x))
        if isinstance(y, list):  # detection targets: one row per image (box-sum, label-sum, box count)
            y = [[float(np.asarray(t["boxes"]).sum()), int(np.asarray(t["labels"]).sum()), len(t["labels"])] for t in y]
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def check_batches(name: str, ds: Dataset, split: str) -> None:
    """Float B x C x H x W images, int64 labels in range, each example once."""
    if getattr(ds, "task", "classification") == "detection":
        return check_detection_batches(name, ds, split)
    n = ds.size(split)
    expect(isinstance(n, int) and n > 0, ROLE, name, f"size({split!r}) of its example must be > 0, got {n!r}")
    shape = (ds.in_channels, ds.resolution, ds.resolution)
    count = 0
    for x, y in ds.loader(split, batch_size=BATCH, shuffle=True, seed=1):
        x, y = np.asarray(x), np.asarray(y)
        expect(x.ndim == 4 and x.shape[1:] == shape and 0 < len(x) <= BATCH, ROLE, name,
               f"{split} batch must be B x {' x '.join(map(str, shape))} with B <= {BATCH}, got {x.shape}")
        expect(np.issubdtype(x.dtype, np.floating) and np.isfinite(x).all(), ROLE, name,
               "images must be finite floats")
        expect(y.shape == (len(x),) and y.dtype == np.int64, ROLE, name, f"labels must be int64 (B,), got {y.dtype}")
        expect(((y >= 0) & (y < ds.num_classes)).all(), ROLE, name,
               f"labels must lie in [0, {ds.num_classes}), got {sorted(set(y.tolist()))}")
        count += len(y)
    expect(count == n, ROLE, name, f"a pass over {split!r} served {count} examples, size() says {n}")


def check_detection_batches(name: str, ds: Dataset, split: str) -> None:
    """Detection sets: float images, one target per image whose boxes lie in [0, 1] with
    x1 <= x2 and y1 <= y2, int64 labels in range and a difficult flag per box; each image once."""
    n = ds.size(split)
    expect(n > 0, ROLE, name, f"size({split!r}) of its example must be > 0, got {n!r}")
    shape, count = (ds.in_channels, ds.resolution, ds.resolution), 0
    for x, targets in ds.loader(split, batch_size=BATCH, shuffle=True, seed=1):
        x = np.asarray(x)
        expect(x.ndim == 4 and x.shape[1:] == shape and np.isfinite(x).all(), ROLE, name,
               f"{split} images must be finite B x {' x '.join(map(str, shape))}, got {x.shape}")
        expect(len(targets) == len(x), ROLE, name, "one target per image")
        for t in targets:
            b, y, d = np.asarray(t["boxes"]), np.asarray(t["labels"]), np.asarray(t["difficult"])
            expect(b.ndim == 2 and b.shape[1] == 4 and len(y) == len(b) == len(d), ROLE, name,
                   f"boxes N x 4 with N labels and flags, got {b.shape}, {y.shape}, {d.shape}")
            expect(bool(((b >= 0) & (b <= 1)).all() and (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()),
                   ROLE, name, "boxes must be xyxy normalised to [0, 1]")
            expect(y.dtype == np.int64 and bool(((y >= 0) & (y < ds.num_classes)).all()), ROLE, name,
                   f"labels must be int64 in [0, {ds.num_classes})")
        count += len(x)
    expect(count == n, ROLE, name, f"a pass over {split!r} served {count} images, size() says {n}")


def check_order(name: str, ds: Dataset, tmp_dir: Path, seed: int) -> None:
    """Same seed: same split and order (also from a new instance); another seed reshuffles."""
    x1, y1 = epoch(ds, "train", True, 3)
    x2, y2 = epoch(ds, "train", True, 3)
    expect(np.array_equal(x1, x2) and np.array_equal(y1, y2), ROLE, name,
           "two loaders with the same seed must serve the same order")
    again = build(name, tmp_dir, seed)
    x3, _ = epoch(again, "train", False, 0)
    x4, _ = epoch(ds, "train", False, 0)
    expect(np.array_equal(x3, x4), ROLE, name, "two instances with the same seed must give the same split")
    if len(x1) >= 8:
        x5, _ = epoch(ds, "train", True, 4)
        expect(not np.array_equal(x1, x5), ROLE, name, "another loader seed must give another order")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Shapes, labels, splits and seeded order on the dataset's example."""
    tmp_dir = Path(tmp_dir)
    seed = example_config(ROLE, name, tmp_dir).seed
    ds = build(name, tmp_dir, seed)
    expect(isinstance(ds.num_classes, int) and ds.num_classes >= 2, ROLE, name,
           f"num_classes must be an int >= 2 after prepare(), got {ds.num_classes!r}")
    expect(ds.in_channels >= 1 and ds.resolution >= 1, ROLE, name, "in_channels and resolution must be set")
    if ds.known_classes is not None:
        expect(ds.num_classes == ds.known_classes, ROLE, name,
               f"known_classes says {ds.known_classes} but the data have {ds.num_classes} classes")
    if getattr(ds, "task", "classification") == "language":
        from hwnas.testing._language import check_language

        return check_language(name, ds, build(name, tmp_dir, seed))
    for split in SPLITS:
        check_batches(name, ds, split)
    check_order(name, ds, tmp_dir, seed)
