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
from hwnas.search.datasets.base import SplitOptions, require_file
from hwnas.search.datasets.pipeline import ArraySource, FileSource
from hwnas.search.datasets.sourced import ArrayDataset, SourceDataset

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")


def cifar_records(path: Path, label_bytes: int) -> np.ndarray:
    """A CIFAR binary file as a read-only memory map of records (label bytes + 3x32x32 pixels)."""
    rec = label_bytes + 3072
    size = path.stat().st_size
    if size == 0 or size % rec:
        raise ConfigError(f"dataset.root: {path} is not a CIFAR binary file ({size} bytes, "
                          f"not a multiple of {rec})")
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(size // rec, rec))


def read_cifar_bin(path: Path, label_bytes: int, label_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR binary file read whole: (N x 3 x 32 x 32 float in [0, 1], labels)."""
    raw = cifar_records(path, label_bytes)
    return _cifar_pixels(raw, label_bytes), np.asarray(raw[:, label_index], dtype=np.int64)


def _cifar_pixels(raw: np.ndarray, label_bytes: int) -> np.ndarray:
    return np.asarray(raw[:, label_bytes:], dtype=np.float32).reshape(-1, 3, 32, 32) / 255.0


class CifarSource(ArraySource):
    """CIFAR records decoded per item from memory maps (``in_memory: false``)."""

    def __init__(self, parts: list[np.ndarray], label_bytes: int, label_index: int) -> None:
        self.parts, self.label_bytes = parts, label_bytes
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        labels = np.concatenate([np.asarray(p[:, label_index], dtype=np.int64) for p in parts])
        super().__init__(None, labels, None)

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        out = np.empty((len(idx), self.parts[0].shape[1]), np.uint8)
        for k in np.unique(part):
            sel = part == k
            out[sel] = self.parts[k][idx[sel] - self.offsets[k]]
        return out

    def read(self, i: int) -> np.ndarray:
        return _cifar_pixels(self._rows(np.array([i])), self.label_bytes)[0]

    def take(self, idx: np.ndarray, finish: Any) -> np.ndarray:
        return finish(_cifar_pixels(self._rows(idx), self.label_bytes))


@dataclass(frozen=True)
class _RootOptions(SplitOptions):
    root: Path = opt(Path("data"), help="folder holding the dataset files (relative to the YAML file)")


@register("dataset", "cifar10")
class Cifar10Dataset(ArrayDataset):  # sources are memory maps: in_memory false reads per item
    """CIFAR-10 from the binary archive: root/data_batch_{1..5}.bin and root/test_batch.bin."""

    known_classes = 10

    LAYOUT = "CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin, test_batch.bin"

    @dataclass(frozen=True)
    class Options(_RootOptions):
        pass

    def _root(self) -> Path:
        root = Path(self.options.root)
        sub = root / "cifar-10-batches-bin"
        return sub if sub.is_dir() else root

    def load_sources(self) -> tuple[Any, Any, int]:
        root = self._root()
        train = [cifar_records(require_file(root / f"data_batch_{i}.bin", "CIFAR-10 training batch", self.LAYOUT), 1)
                 for i in range(1, 6)]
        test = [cifar_records(require_file(root / "test_batch.bin", "CIFAR-10 test batch", self.LAYOUT), 1)]
        return CifarSource(train, 1, 0), CifarSource(test, 1, 0), 10

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        train, test, n = self.load_sources()
        return train.take(np.arange(len(train)), lambda a: a), train.y, test.take(np.arange(len(test)),
                                                                                   lambda a: a), test.y, n


@register("dataset", "cifar100")
class Cifar100Dataset(ArrayDataset):
    """CIFAR-100 from the binary archive: root/train.bin and root/test.bin (coarse + fine labels)."""

    known_classes = 100

    LAYOUT = "CIFAR-100 binary version: train.bin, test.bin"

    @dataclass(frozen=True)
    class Options(_RootOptions):
        labels: Literal["fine", "coarse"] = opt("fine", help="fine (100 classes) or coarse (20 superclasses)")

    def load_sources(self) -> tuple[Any, Any, int]:
        root = Path(self.options.root)
        if (root / "cifar-100-binary").is_dir():
            root = root / "cifar-100-binary"
        idx = 1 if self.options.labels == "fine" else 0
        train = cifar_records(require_file(root / "train.bin", "CIFAR-100 training file", self.LAYOUT), 2)
        test = cifar_records(require_file(root / "test.bin", "CIFAR-100 test file", self.LAYOUT), 2)
        return CifarSource([train], 2, idx), CifarSource([test], 2, idx), 100 if idx == 1 else 20

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        train, test, n = self.load_sources()
        return train.take(np.arange(len(train)), lambda a: a), train.y, test.take(np.arange(len(test)),
                                                                                   lambda a: a), test.y, n


@register("dataset", "svhn")
class SVHNDataset(ArrayDataset):
    """SVHN cropped digits: root/train_32x32.mat and root/test_32x32.mat (scipy.io.loadmat)."""

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
class ImageFolderDataset(SourceDataset):
    """One sub-folder per class of PNG/JPEG images (root/<class>/*.png), optionally split
    into root/train/<class> and root/test/<class>; Tiny-ImageNet's layout (class folders
    holding images/, and val/images + val/val_annotations.txt as the labelled test split)
    is understood. Images are decoded with Pillow, one at a time unless in_memory."""

    LAYOUT = ("root/<class>/*.png|jpg, or root/train/<class>/... with root/test/<class>/... or "
              "root/val/images + root/val/val_annotations.txt (Tiny-ImageNet)")

    @dataclass(frozen=True)
    class Options(_RootOptions):
        in_memory: bool = opt(False, help="decode every image once up front instead of per item")

    @staticmethod
    def _images(folder: Path) -> list[Path]:
        if (folder / "images").is_dir():  # Tiny-ImageNet: train/<wnid>/images/*.JPEG
            folder = folder / "images"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def _tree(self, root: Path, classes: list[str]) -> FileSource:
        paths, labels = [], []
        for label, name in enumerate(classes):
            files = self._images(root / name)
            paths += files
            labels += [label] * len(files)
        if not paths:
            raise ConfigError(f"dataset.root: no images under {root} ({self.LAYOUT})")
        return FileSource(paths, labels, read_image)

    def _val_annotations(self, val: Path, classes: list[str]) -> FileSource:
        """Tiny-ImageNet's val/: images/ plus val_annotations.txt (file, wnid, box...)."""
        index = {c: i for i, c in enumerate(classes)}
        paths, labels = [], []
        ann = val / "val_annotations.txt"
        for n, line in enumerate(ann.read_text().splitlines(), 1):
            parts = line.split("\t")
            if not line.strip():
                continue
            if len(parts) < 2 or parts[1] not in index:
                raise ConfigError(f"{ann}:{n}: expected 'FILE<TAB>CLASS...' with a class of train/, got {line[:80]!r}")
            paths.append(require_file(val / "images" / parts[0], "annotated image", self.LAYOUT))
            labels.append(index[parts[1]])
        if not paths:
            raise ConfigError(f"{ann}: no annotated images")
        return FileSource(paths, labels, read_image)

    def load_sources(self) -> tuple[Any, Any | None, int]:
        root = Path(self.options.root)
        if not root.is_dir():
            raise ConfigError(f"dataset.root: folder not found: {root} ({self.LAYOUT})")
        train = root / "train" if (root / "train").is_dir() else root
        classes = sorted(p.name for p in train.iterdir() if p.is_dir())
        if not classes:
            raise ConfigError(f"dataset.root: no class folders under {train} ({self.LAYOUT})")
        src = self._tree(train, classes)
        if train == root:
            return src, None, len(classes)
        if (root / "val" / "val_annotations.txt").is_file():
            return src, self._val_annotations(root / "val", classes), len(classes)
        for held in ("test", "val"):
            if (root / held).is_dir() and any((root / held / c).is_dir() for c in classes):
                return src, self._tree(root / held, classes), len(classes)
        return src, None, len(classes)
