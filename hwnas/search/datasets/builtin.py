"""Datasets that need no files: scikit-learn's digits and a synthetic task.

``digits`` is the default because it is *real* data (1,797 handwritten 8x8 digits
shipped inside scikit-learn) yet trains in seconds on a CPU, so an honest
train-from-scratch search runs anywhere. ``synthetic`` is for tests of the plumbing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.datasets.base import SplitOptions
from hwnas.search.datasets.sourced import ArrayDataset


@register("dataset", "digits")
class DigitsDataset(ArrayDataset):
    """scikit-learn's 8x8 handwritten digits (10 classes), upsampled to ``resolution``."""

    known_classes = 10

    @dataclass(frozen=True)
    class Options(SplitOptions):
        pass

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, None, None, int]:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
        return x, d.target.astype(np.int64), None, None, 10


@register("dataset", "synthetic")
class SyntheticDataset(ArrayDataset):
    """Noisy copies of random class prototypes: a learnable task of any shape, no files."""

    @dataclass(frozen=True)
    class Options(SplitOptions):
        num_classes: int = opt(10, min=2, help="number of classes")
        samples: int = opt(1000, min=10, help="images generated before splitting")
        noise: float = opt(0.5, min=0.0, help="std of the noise added to each prototype")

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, None, None, int]:
        o = self.options
        rng = np.random.default_rng(self.seed + 7919)
        low = max(4, o.resolution // 4)
        protos = rng.normal(size=(o.num_classes, o.channels, low, low)).astype(np.float32)
        y = rng.integers(o.num_classes, size=o.samples)
        x = protos[y] + o.noise * rng.normal(size=(o.samples, o.channels, low, low)).astype(np.float32)
        return x.astype(np.float32), y.astype(np.int64), None, None, o.num_classes
