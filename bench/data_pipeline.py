"""Data pipeline throughput: images/s of a training DataLoader with 0 vs 2 worker
processes, augmentation on, on this 2-core machine, in one run.

Two cases: an image folder read lazily (each JPEG decoded with Pillow per item, random
resized crop + flip + cutout + normalisation in torch: the ImageNet-style path), and
digits held in memory (padded random crop + flip + cutout: the CIFAR-style path). The
folder is generated (seeded random JPEGs) into a temporary directory, or given with
--folder. Run alone on the machine: .venv/bin/python bench/data_pipeline.py
Prints a table, writes bench/results/data_pipeline.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from hwnas.config import parse_options  # noqa: E402
from hwnas.registry import get  # noqa: E402
from hwnas.ui import format_table  # noqa: E402


def make_folder(root: Path, classes: int, per_class: int, size: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"class{c:02d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(img).save(d / f"{i}.jpg", format="JPEG", quality=90)
    return root


def dataset(name: str, **opts: Any) -> Any:
    cls = get("dataset", name)
    return cls(parse_options(cls.Options, opts, "dataset"), seed=0).prepare()


def images_per_s(ds: Any, batch: int, epochs: int) -> tuple[float, int]:
    """Images/s over ``epochs`` passes of the training loader (worker start included)."""
    n, t0 = 0, time.perf_counter()
    for epoch in range(epochs):
        for x, _ in ds.loader("train", batch_size=batch, shuffle=True, seed=epoch):
            n += len(x)
    return n / (time.perf_counter() - t0), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, help="an image folder (root/<class>/*.jpg); default: generated")
    ap.add_argument("--images", type=int, default=2000, help="generated images (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    if args.folder is not None and not args.folder.is_dir():
        print(f"skipped: no image folder at {args.folder}")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or make_folder(Path(tmp) / "folder", 10, args.images // 10, 64)
        cases = {
            "imagefolder lazy JPEG 64px -> 56 (rrc, flip, cutout)": (
                "imagefolder", {"root": str(folder), "resolution": 56, "valid_fraction": 0.0, "test_fraction": 0.0,
                                "augment": {"random_resized_crop": True, "hflip": True, "cutout": 16}}),
            "digits in memory 32px (pad crop, flip, cutout)": (
                "digits", {"resolution": 32, "channels": 3, "valid_fraction": 0.0, "test_fraction": 0.0,
                           "augment": {"crop_padding": 4, "hflip": True, "cutout": 8}}),
        }
        for label, (name, opts) in cases.items():
            base = None
            for workers in (0, 2):
                ds = dataset(name, **opts, workers=workers)
                rate, n = images_per_s(ds, 64, args.epochs)
                base = base or rate
                rows.append({"case": label, "workers": workers, "images": n, "images_per_s": round(rate, 1),
                             "speedup": round(rate / base, 2)})
    print(format_table(rows, ["case", "workers", "images", "images_per_s", "speedup"]))
    out = ROOT / "bench" / "results" / "data_pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "batch_size": 64, "epochs": args.epochs,
                               "python": platform.python_version(), "cpus": os.cpu_count()}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
