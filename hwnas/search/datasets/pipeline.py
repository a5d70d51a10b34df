"""The torch side of a dataset: item sources, per-split ``torch.utils.data.Dataset``s and
a batch sampler that shards every global batch over distributed ranks.

Why a sampler of our own: the same seed must give the same batches whatever the
number of processes. A global batch of ``batch_size * world`` examples is cut into
one contiguous part per rank, so the union over ranks of step *i* is exactly step *i*
of one process with the global batch size — which is what makes a DDP run comparable
to (and testable against) a single-process one. With ``world == 1`` and shuffling it
draws ``torch.randperm(n, generator=seed)``, the very order torch's ``RandomSampler``
gives, so single-process runs keep their batches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from hwnas.search.datasets.augment import Augment, item_generator

Finish = Callable[[np.ndarray], np.ndarray]


class ArraySource:
    """Images held as an N x C x H x W float array (or a memory map of raw records)."""

    def __init__(self, x: Any, y: np.ndarray, decode: Callable[[Any], np.ndarray] | None = None) -> None:
        self.x, self.y = x, np.asarray(y, dtype=np.int64)
        self.decode = decode or (lambda a: np.asarray(a, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.y)

    def read(self, i: int) -> np.ndarray:
        """One image, C x H x W float32 in [0, 1]."""
        return self.decode(self.x[i:i + 1])[0]

    def take(self, idx: np.ndarray, finish: Finish) -> np.ndarray:
        return finish(self.decode(self.x[idx]))


class FileSource:
    """Images decoded from files one at a time (image folders)."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], read: Callable[[Path], np.ndarray]) -> None:
        self.paths = list(paths)
        self.y = np.asarray(labels, dtype=np.int64)
        self._read = read

    def __len__(self) -> int:
        return len(self.y)

    def read(self, i: int) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(self._read(self.paths[i]), (2, 0, 1)), dtype=np.float32)

    def take(self, idx: np.ndarray, finish: Finish) -> np.ndarray:
        return np.concatenate([finish(self.read(int(i))[None]) for i in idx]) if len(idx) else \
            np.zeros((0, 1, 1, 1), np.float32)


def torch_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """One C x H x W image to ``channels`` (grey repeated, or RGB averaged by luminance)."""
    if x.shape[0] == channels:
        return x
    if x.shape[0] == 1 and channels == 3:
        return x.repeat(3, 1, 1)
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(3, 1, 1)
    return (x[:3] * weights).sum(0, keepdim=True)


class SplitData(TorchDataset):
    """One split read lazily: item ``i`` is ``source[indices[i]]``, converted to the
    dataset's channels, then transformed (resize, augmentation, normalisation) with a
    generator seeded by (``seed``, ``i``), so workers and epochs are reproducible."""

    def __init__(self, source: Any, indices: np.ndarray, transform: Augment | None, seed: int,
                 channels: int) -> None:
        self.source, self.indices = source, np.asarray(indices, dtype=np.int64)
        self.transform, self.seed, self.channels = transform, int(seed), int(channels)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = int(self.indices[i])
        x = torch_channels(torch.from_numpy(np.ascontiguousarray(self.source.read(j))), self.channels)
        if self.transform is not None:
            x = self.transform(x, item_generator(self.seed, i) if self.transform.random else None)
        return x, int(self.source.y[j])


class RankBatchSampler(Sampler[list[int]]):
    """Index batches of one rank: each global batch (``batch_size * world`` examples of a
    seeded permutation, or in order) split into ``world`` contiguous parts.

    ``drop_last`` drops an incomplete last global batch (training under DDP, where
    every rank must take the same number of equal steps); otherwise it is shared out
    as evenly as possible and a rank whose share is empty skips it.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1,
                 drop_last: bool = False) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = int(n), int(batch_size), bool(shuffle), int(seed)
        self.rank, self.world, self.drop_last = int(rank), int(world), bool(drop_last)

    def _order(self) -> list[int]:
        if self.shuffle:
            return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        return list(range(self.n))

    def _parts(self) -> Iterator[list[int]]:
        order, g = self._order(), self.batch_size * self.world
        for start in range(0, self.n, g):
            chunk = order[start:start + g]
            if len(chunk) < g and self.drop_last:
                return
            if self.world == 1:
                yield chunk
                continue
            bounds = np.linspace(0, len(chunk), self.world + 1).round().astype(int) if len(chunk) < g else \
                np.arange(self.world + 1) * self.batch_size
            part = chunk[bounds[self.rank]:bounds[self.rank + 1]]
            if part:
                yield part

    def __iter__(self) -> Iterator[list[int]]:
        return self._parts()

    def __len__(self) -> int:
        return sum(1 for _ in self._parts())


def make_loader(data: TorchDataset, sampler: RankBatchSampler, *, workers: int = 0, pin_memory: bool = False) -> Any:
    """A DataLoader over ``data`` in ``sampler``'s batches (one rank's share, seeded order)."""
    from torch.utils.data import DataLoader

    return DataLoader(data, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=False)
