"""The dataset role, and array-backed datasets with seeded train / valid / test splits.

Contract of a dataset (checked by the suite in ``testing/dataset.py``): built as
``cls(options, seed=...)``; after :meth:`Dataset.prepare` it knows ``num_classes``,
``in_channels`` and ``resolution``; :meth:`Dataset.loader` yields ``(x, y)`` batches
(float images ``B x C x H x W``, int64 labels in ``[0, num_classes)``) for the splits
``train``, ``valid`` and ``test`` (each example once per pass), the same seed gives the
same split and order, and ``known_classes``, when set, equals ``num_classes``.
:meth:`Component.example` gives a small config (generated files under ``tmp_dir`` for
datasets that read files).

Every built-in dataset is an *item source* (arrays, a memory map, or image files)
split by one seeded permutation, so the same seed always gives the same split whatever
the source format. ``in_memory: true`` materialises each split as normalised arrays
once (small sets: digits, CIFAR); ``in_memory: false`` reads and decodes each item when
a DataLoader worker asks for it (image folders, Tiny-ImageNet, anything large).
Augmentation (``dataset.augment``, :mod:`hwnas.search.datasets.augment`) applies to the
training split only; ``workers`` and ``pin_memory`` configure the DataLoaders.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.search.component import Component
from hwnas.search.datasets.augment import AugmentOptions

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
    augment: AugmentOptions = opt(AugmentOptions(), help="training-time augmentation (train split only)")
    workers: int = opt(0, min=0, max=64, help="DataLoader worker processes (0 = load in the main process)")
    pin_memory: Literal["auto", True, False] = opt("auto", help="pinned host memory for batches (auto = when "
                                                                "CUDA is available)")
    in_memory: bool = opt(True, help="hold each split as normalised arrays (small sets) instead of reading "
                                     "items lazily")


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

    def torch_dataset(self, split: str, *, seed: int = 0) -> Any:
        """``split`` as a ``torch.utils.data.Dataset`` of ``(image, label)`` items; random
        augmentation (training split) seeded by ``seed`` and the item index. A dataset
        that overrides :meth:`loader` instead need not implement it."""
        raise NotImplementedError(f"{type(self).__name__} provides loader() only")

    def loader(self, split: str, *, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
               world: int = 1, drop_last: bool = False) -> Any:
        """Batches ``(x, y)`` of ``split`` for process ``rank`` of ``world``: shuffling and
        augmentation seeded by ``seed`` alone (callers vary it per epoch)."""
        from hwnas.search.datasets.pipeline import RankBatchSampler, make_loader

        o = getattr(self, "options", None)
        pin = getattr(o, "pin_memory", False)
        if pin == "auto":
            import torch

            pin = torch.cuda.is_available()
        data = self.torch_dataset(split, seed=seed)
        sampler = RankBatchSampler(len(data), batch_size, shuffle=shuffle, seed=seed, rank=rank, world=world,
                                   drop_last=drop_last)
        return make_loader(data, sampler, workers=int(getattr(o, "workers", 0)), pin_memory=bool(pin))


