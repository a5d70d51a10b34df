"""Tiny generated dataset files in the formats the built-in datasets read.

The dataset contract suite needs real files to read (CIFAR binaries, an SVHN .mat, a
folder of PNGs) but tests must not download anything and real archives are hundreds
of megabytes. These writers produce a few random images per class in exactly the
documented layouts, so the readers' parsing, label handling and splitting run for real.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _pixels(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 3x32x32 uint8 images (CIFAR's channel-major record layout)."""
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> Path:
    """data_batch_1..5.bin and test_batch.bin: records of 1 label byte + 3072 pixels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for b, name in enumerate(names):
        labels = (np.arange(per_batch) + b * per_batch) % 10
        rec = np.concatenate([labels[:, None].astype(np.uint8), _pixels(rng, per_batch).reshape(per_batch, -1)], 1)
        rec.tofile(root / name)
    return root


def write_cifar100(root: Path, n_train: int = 24, n_test: int = 8, seed: int = 0) -> Path:
    """train.bin and test.bin: records of coarse label, fine label, 3072 pixels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.bin", n_train), ("test.bin", n_test)):
        fine = rng.integers(0, 100, size=n).astype(np.uint8)
        coarse = (fine // 5).astype(np.uint8)
        np.concatenate([coarse[:, None], fine[:, None], _pixels(rng, n).reshape(n, -1)], 1).tofile(root / name)
    return root


def write_svhn(root: Path, n_train: int = 20, n_test: int = 8, seed: int = 0) -> Path:
    """train_32x32.mat and test_32x32.mat: X is 32x32x3xN uint8, y is Nx1 with 10 for digit 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        x = np.transpose(_pixels(rng, n), (2, 3, 1, 0))
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)
        savemat(str(root / name), {"X": x, "y": y})
    return root


def write_imagefolder(root: Path, classes: int = 3, per_class: int = 6, size: int = 8, seed: int = 0) -> Path:
    """root/class_<i>/<j>.png: small random RGB PNGs, one folder per class."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            save_png(folder / f"{j}.png", rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8))
    return root


def save_png(path: Path, img: np.ndarray) -> None:
    """An H x W x 3 uint8 image as PNG (Pillow, or matplotlib where Pillow is absent)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib's usual installs
        import matplotlib.image as mpimg

        mpimg.imsave(str(path), img)
    else:
        Image.fromarray(img, "RGB").save(path)
