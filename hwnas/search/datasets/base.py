"""The dataset role, and array-backed datasets with seeded train / valid / test splits.

Contract of a dataset (checked by ``hwnas.testing.dataset``): built as
``cls(options, seed=...)``; after :meth:`Dataset.prepare` it knows ``num_classes``,
``in_channels`` and ``resolution``; :meth:`Dataset.loader` yields ``(x, y)`` batches
(float images ``B x C x H x W``, int64 labels in ``[0, num_classes)``) for the splits
``train``, ``valid`` and ``test`` (each example once per pass), the same seed gives the
same split and order, and ``known_classes``, when set, equals ``num_classes``.
:meth:`Component.example` gives a small config (generated files under ``tmp_dir`` for
datasets that read files).

Every built-in dataset ends up as numpy arrays (images ``N x C x H x W`` float32,
labels ``N`` int64): small enough for the quick searches hwnas runs on CPU, and it
keeps the split logic in one place so that the same seed always gives the same
split whatever the source format.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.search.component import Component

SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitOptions:
    """Options every array dataset shares (nested ``Options`` classes extend it)."""

    resolution: int = opt(32, min=4, max=512, help="images are resized to resolution x resolution")
    channels: int = opt(3, choices=(1, 3), help="1 (grey) or 3 (RGB; grey images are repeated)")
    valid_fraction: float = opt(0.2, min=0.0, lt=1.0, help="share of the training data held out for validation")
    test_fraction: float = opt(0.2, min=0.0, lt=1.0,
                               help="share held out for test when the source has no test split")
    max_train: int = opt(0, min=0, help="cap on training images (0 = all); small caps keep searches fast")


def resize(x: np.ndarray, resolution: int) -> np.ndarray:
    """Bilinear resize of an N x C x H x W float array (no-op at the same size)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    import torch
    import torch.nn.functional as F

    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(resolution, resolution),
                        mode="bilinear", align_corners=False)
    return out.numpy()


def set_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Grey -> RGB by repetition, RGB -> grey by the luminance average."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return np.repeat(x, 3, axis=1)
    if x.shape[1] == 3 and channels == 1:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).astype(np.float32)
    raise ConfigError(f"dataset.channels: cannot turn {x.shape[1]} channels into {channels}")


def require_file(path: Path, what: str, layout: str) -> Path:
    """Return ``path`` or raise a ConfigError that names it and the expected layout."""
    if not path.is_file():
        raise ConfigError(f"dataset.root: {what} not found: expected {path} ({layout}); hwnas never downloads data")
    return path


class Dataset(Component):
    """Batches of real data: train / valid / test splits as torch DataLoaders."""

    num_classes: int
    in_channels: int
    resolution: int
    #: Classes known before loading (fixed by the format, e.g. CIFAR-100: 100), or None
    #: when only the data say it; ``gen-config`` sizes a space's classifier from it.
    known_classes: int | None = None

    def prepare(self) -> Dataset:
        """Load whatever is needed to know the shapes (lazily: building a config stays cheap)."""
        return self

    @abstractmethod
    def size(self, split: str) -> int:
        """Number of examples in ``split``."""

    @abstractmethod
    def loader(self, split: str, *, batch_size: int, shuffle: bool, seed: int = 0) -> Any:
        """Batches ``(x, y)`` of ``split``; shuffling seeded by ``seed`` alone."""


class ArrayDataset(Dataset):
    """Base of the built-in datasets: arrays in memory, seeded splits, torch loaders."""

    def __init__(self, options: Any, *, seed: int = 0) -> None:
        self.options = options
        self.seed = int(seed)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.num_classes = 0
        self.in_channels = int(getattr(options, "channels", 3))
        self.resolution = int(getattr(options, "resolution", 32))

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
        """(train_x, train_y, test_x or None, test_y or None, num_classes); x is N x C x H x W."""

    # -- generic --------------------------------------------------------------------------
    def prepare(self) -> "ArrayDataset":
        """Load, resize, normalise and split once (lazily, so building a config is cheap)."""
        if self._arrays:
            return self
        o = self.options
        tx, ty, sx, sy, n_classes = self.load_arrays()
        self.num_classes = int(n_classes)
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(tx))
        tx, ty = tx[perm], ty[perm]
        if sx is None or sy is None:
            n_test = int(round(len(tx) * o.test_fraction))
            sx, sy, tx, ty = tx[:n_test], ty[:n_test], tx[n_test:], ty[n_test:]
        n_valid = int(round(len(tx) * o.valid_fraction))
        vx, vy, tx, ty = tx[:n_valid], ty[:n_valid], tx[n_valid:], ty[n_valid:]
        if o.max_train:
            tx, ty = tx[:o.max_train], ty[:o.max_train]
        prepped = [self._finish(x) for x in (tx, vx, sx)]
        mean = prepped[0].mean(axis=(0, 2, 3), keepdims=True)
        std = prepped[0].std(axis=(0, 2, 3), keepdims=True) + 1e-6
        for split, x, y in zip(SPLITS, prepped, (ty, vy, sy)):
            self._arrays[split] = (((x - mean) / std).astype(np.float32), np.asarray(y, dtype=np.int64))
        return self

    def _finish(self, x: np.ndarray) -> np.ndarray:
        x = set_channels(np.asarray(x, dtype=np.float32), self.in_channels)
        return resize(x, self.resolution)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in SPLITS:
            raise ConfigError(f"dataset split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.prepare()
        return self._arrays[split]

    def size(self, split: str) -> int:
        return len(self.arrays(split)[1])

    def loader(self, split: str, *, batch_size: int, shuffle: bool, seed: int = 0) -> Any:
        """A torch DataLoader; shuffling uses its own generator so loaders never touch global RNG."""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        x, y = self.arrays(split)
        gen = torch.Generator().manual_seed(int(seed))
        return DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch_size,
                          shuffle=shuffle, generator=gen, num_workers=0)
