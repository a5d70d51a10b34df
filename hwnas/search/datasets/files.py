"""Datasets read from local files: CIFAR-10/100 (binary version), SVHN (.mat), image folders.

hwnas never downloads: a missing file raises a ConfigError that names the path it
expected and the layout, so the user knows exactly what to fetch and where to put it.
CIFAR is read from the *binary* archives with numpy (the Python-version archives are
pickles, which hwnas does not load).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.datasets.base import ArrayDataset, SplitOptions, require_file

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")


def read_cifar_bin(path: Path, label_bytes: int, label_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR binary file: records of ``label_bytes`` label bytes then 3x32x32 pixels."""
    rec = label_bytes + 3072
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % rec:
        raise ConfigError(f"dataset.root: {path} is not a CIFAR binary file ({raw.size} bytes, "
                          f"not a multiple of {rec})")
    raw = raw.reshape(-1, rec)
    x = raw[:, label_bytes:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return x, raw[:, label_index].astype(np.int64)


@dataclass(frozen=True)
class _RootOptions(SplitOptions):
    root: Path = opt(Path("data"), help="folder holding the dataset files (relative to the YAML file)")


@register("dataset", "cifar10")
class Cifar10Dataset(ArrayDataset):
    """CIFAR-10 from the binary archive: root/data_batch_{1..5}.bin and root/test_batch.bin."""

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Tiny generated CIFAR-10 binaries (4 images per batch file) under ``tmp_dir``."""
        from hwnas.testing.data_files import write_cifar10

        return {"dataset": {"type": "cifar10", "root": str(write_cifar10(tmp_dir / "cifar10")), "resolution": 8}}

    known_classes = 10

    LAYOUT = "CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin, test_batch.bin"

    @dataclass(frozen=True)
    class Options(_RootOptions):
        pass

    def _root(self) -> Path:
        root = Path(self.options.root)
        sub = root / "cifar-10-batches-bin"
        return sub if sub.is_dir() else root

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        root = self._root()
        parts = [read_cifar_bin(require_file(root / f"data_batch_{i}.bin", "CIFAR-10 training batch", self.LAYOUT),
                                1, 0) for i in range(1, 6)]
        sx, sy = read_cifar_bin(require_file(root / "test_batch.bin", "CIFAR-10 test batch", self.LAYOUT), 1, 0)
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), sx, sy, 10)


@register("dataset", "cifar100")
class Cifar100Dataset(ArrayDataset):
    """CIFAR-100 from the binary archive: root/train.bin and root/test.bin (coarse + fine labels)."""

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Tiny generated CIFAR-100 binaries under ``tmp_dir`` (fine labels)."""
        from hwnas.testing.data_files import write_cifar100

        return {"dataset": {"type": "cifar100", "root": str(write_cifar100(tmp_dir / "cifar100")), "resolution": 8}}

    known_classes = 100

    LAYOUT = "CIFAR-100 binary version: train.bin, test.bin"

    @dataclass(frozen=True)
    class Options(_RootOptions):
        labels: Literal["fine", "coarse"] = opt("fine", help="fine (100 classes) or coarse (20 superclasses)")

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        root = Path(self.options.root)
        if (root / "cifar-100-binary").is_dir():
            root = root / "cifar-100-binary"
        idx = 1 if self.options.labels == "fine" else 0
        tx, ty = read_cifar_bin(require_file(root / "train.bin", "CIFAR-100 training file", self.LAYOUT), 2, idx)
        sx, sy = read_cifar_bin(require_file(root / "test.bin", "CIFAR-100 test file", self.LAYOUT), 2, idx)
        return tx, ty, sx, sy, 100 if idx == 1 else 20


@register("dataset", "svhn")
class SVHNDataset(ArrayDataset):
    """SVHN cropped digits: root/train_32x32.mat and root/test_32x32.mat (scipy.io.loadmat)."""

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Tiny generated SVHN .mat files under ``tmp_dir`` (label 10 stands for digit 0)."""
        from hwnas.testing.data_files import write_svhn

        return {"dataset": {"type": "svhn", "root": str(write_svhn(tmp_dir / "svhn")), "resolution": 8}}

    known_classes = 10

    LAYOUT = "SVHN format 2: train_32x32.mat, test_32x32.mat with X (32x32x3xN) and y (Nx1, 10 = digit 0)"

    @dataclass(frozen=True)
    class Options(_RootOptions):
        pass

    def _read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        from scipy.io import loadmat

        path = require_file(Path(self.options.root) / name, "SVHN file", self.LAYOUT)
        mat = loadmat(str(path))
        if "X" not in mat or "y" not in mat:
            raise ConfigError(f"dataset.root: {path} has no X / y arrays ({self.LAYOUT})")
        x = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.float32) / 255.0
        y = mat["y"].reshape(-1).astype(np.int64) % 10
        return x, y

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        tx, ty = self._read("train_32x32.mat")
        sx, sy = self._read("test_32x32.mat")
        return tx, ty, sx, sy, 10


def read_image(path: Path) -> np.ndarray:
    """One image as H x W x C float in [0, 1]: PIL when installed (PNG, JPEG, BMP), else
    matplotlib.image, which reads PNG only."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL ships with matplotlib's usual installs
        if path.suffix.lower() != ".png":
            raise ConfigError(f"dataset.root: {path}: without Pillow only PNG images can be read") from None
        import matplotlib.image as mpimg

        arr = np.asarray(mpimg.imread(str(path)), dtype=np.float32)
    else:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr[:, :, :3]


@register("dataset", "imagefolder")
class ImageFolderDataset(ArrayDataset):
    """One sub-folder per class of PNG/JPEG images (root/<class>/*.png), optionally split
    into root/train/<class> and root/test/<class>. Images are read with Pillow."""

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Three class folders of small generated PNGs under ``tmp_dir``."""
        from hwnas.testing.data_files import write_imagefolder

        return {"dataset": {"type": "imagefolder", "root": str(write_imagefolder(tmp_dir / "images")), "resolution": 8}}

    LAYOUT = "root/<class>/*.png|jpg, or root/train/<class>/... and root/test/<class>/..."

    @dataclass(frozen=True)
    class Options(_RootOptions):
        pass

    def _read_tree(self, root: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from hwnas.search.datasets.base import resize

        xs, ys = [], []
        for label, name in enumerate(classes):
            folder = root / name
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
            for f in files:
                img = np.transpose(read_image(f), (2, 0, 1))[None]
                xs.append(resize(np.ascontiguousarray(img), self.options.resolution)[0])
                ys.append(label)
        if not xs:
            raise ConfigError(f"dataset.root: no images under {root} ({self.LAYOUT})")
        return np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
        root = Path(self.options.root)
        if not root.is_dir():
            raise ConfigError(f"dataset.root: folder not found: {root} ({self.LAYOUT})")
        train = root / "train" if (root / "train").is_dir() else root
        classes = sorted(p.name for p in train.iterdir() if p.is_dir())
        if not classes:
            raise ConfigError(f"dataset.root: no class folders under {train} ({self.LAYOUT})")
        tx, ty = self._read_tree(train, classes)
        if (root / "test").is_dir() and train != root:
            sx, sy = self._read_tree(root / "test", classes)
            return tx, ty, sx, sy, len(classes)
        return tx, ty, None, None, len(classes)
