"""Datasets built on item sources: one seeded split, held in memory or read lazily.

A subclass says where its items come from — :meth:`SourceDataset.load_sources` (any
source: files, a memory map) or, for sets that are arrays anyway,
:meth:`ArrayDataset.load_arrays` — and this class does the rest the same way for all:
the seeded train / valid / test split, the training split's normalisation statistics,
and the per-split torch datasets with augmentation.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.search.datasets.base import SPLITS, Dataset, resize, set_channels
from hwnas.search.datasets.pipeline import ArraySource

#: Training items a lazily read dataset decodes to estimate its normalisation statistics.
STATS_ITEMS = 2048


class SourceDataset(Dataset):
    """Base of the built-in datasets: item sources, seeded splits, torch datasets."""

    def __init__(self, options: Any, *, seed: int = 0) -> None:
        self.options = options
        self.seed = int(seed)
        self._splits: dict[str, tuple[Any, np.ndarray]] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.num_classes = 0
        self.in_channels = int(getattr(options, "channels", 3))
        self.resolution = int(getattr(options, "resolution", 32))

    @abstractmethod
    def load_sources(self) -> tuple[Any, Any | None, int]:
        """(train source, test source or None, num_classes)."""

    @property
    def in_memory(self) -> bool:
        return bool(getattr(self.options, "in_memory", True))

    def prepare(self) -> "SourceDataset":
        """Split once (lazily, so building a config is cheap); in memory, also load,
        resize and normalise every split."""
        if self._splits:
            return self
        o = self.options
        train, test, n_classes = self.load_sources()
        self.num_classes = int(n_classes)
        perm = np.random.default_rng(self.seed).permutation(len(train))
        if test is None:
            n_test = int(round(len(perm) * o.test_fraction))
            test, test_idx, perm = train, perm[:n_test], perm[n_test:]
        else:
            test_idx = np.arange(len(test))
        n_valid = int(round(len(perm) * o.valid_fraction))
        valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
        if o.max_train:
            train_idx = train_idx[:o.max_train]
        self._splits = {"train": (train, train_idx), "valid": (train, valid_idx), "test": (test, test_idx)}
        if self.in_memory:
            self._load_arrays()
        else:
            self._estimate_stats()
        return self

    def _finish(self, x: np.ndarray) -> np.ndarray:
        x = set_channels(np.asarray(x, dtype=np.float32), self.in_channels)
        return resize(x, self.resolution)

    def _load_arrays(self) -> None:
        prepped = {s: self._finish(src.take(idx, lambda a: a)) if isinstance(src, ArraySource) else
                   src.take(idx, self._finish) for s, (src, idx) in self._splits.items()}
        prepped = {s: (x if len(x) else np.zeros((0, self.in_channels, self.resolution, self.resolution), np.float32))
                   for s, x in prepped.items()}
        self.mean = prepped["train"].mean(axis=(0, 2, 3), keepdims=True)
        self.std = prepped["train"].std(axis=(0, 2, 3), keepdims=True) + 1e-6
        norm = getattr(getattr(self.options, "augment", None), "normalize", True)
        for split in SPLITS:
            src, idx = self._splits[split]
            x = ((prepped[split] - self.mean) / self.std) if norm else prepped[split]
            self._arrays[split] = (x.astype(np.float32), np.asarray(src.y[idx], dtype=np.int64))

    def _estimate_stats(self) -> None:
        """Per-channel mean / std of (up to STATS_ITEMS) seeded training items."""
        src, idx = self._splits["train"]
        if not len(idx):
            raise ConfigError("dataset: the train split is empty")
        pick = np.random.default_rng(self.seed + 1).permutation(idx)[:STATS_ITEMS]
        x = src.take(pick, self._finish)
        self.mean = x.mean(axis=(0, 2, 3), keepdims=True)
        self.std = x.std(axis=(0, 2, 3), keepdims=True) + 1e-6

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ConfigError(f"dataset split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.prepare()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The split as (normalised images, labels); materialised on demand when lazy."""
        self._check_split(split)
        if split not in self._arrays:
            src, idx = self._splits[split]
            x = src.take(idx, self._finish)
            norm = getattr(getattr(self.options, "augment", None), "normalize", True)
            self._arrays[split] = (((x - self.mean) / self.std).astype(np.float32) if norm else x,
                                   np.asarray(src.y[idx], dtype=np.int64))
        return self._arrays[split]

    def size(self, split: str) -> int:
        self._check_split(split)
        return len(self._splits[split][1])

    def _augment(self, split: str, normalized_input: bool) -> Any:
        from hwnas.search.datasets.augment import Augment, AugmentOptions

        opts = getattr(self.options, "augment", None) or AugmentOptions()
        assert self.mean is not None and self.std is not None
        return Augment(opts, resolution=self.resolution, train=split == "train", mean=self.mean.flatten(),
                       std=self.std.flatten(), normalized_input=normalized_input)

    def torch_dataset(self, split: str, *, seed: int = 0) -> Any:
        import torch
        from torch.utils.data import TensorDataset

        from hwnas.search.datasets.pipeline import SplitData

        self._check_split(split)
        if self.in_memory:
            x, y = self._arrays[split]
            aug = self._augment(split, normalized_input=True)
            if not aug.random:
                return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            return SplitData(ArraySource(x, y), np.arange(len(y)), aug, seed, self.in_channels)
        src, idx = self._splits[split]
        return SplitData(src, idx, self._augment(split, normalized_input=False), seed, self.in_channels)


class ArrayDataset(SourceDataset):
    """A dataset whose source is a set of numpy arrays (images ``N x C x H x W``)."""

    @abstractmethod
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
        """(train_x, train_y, test_x or None, test_y or None, num_classes); x is N x C x H x W."""

    def load_sources(self) -> tuple[Any, Any | None, int]:
        tx, ty, sx, sy, n = self.load_arrays()
        test = ArraySource(sx, sy) if sx is not None and sy is not None else None
        return ArraySource(tx, ty), test, n
