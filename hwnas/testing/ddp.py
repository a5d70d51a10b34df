"""A BatchNorm-free training run for checking DistributedDataParallel exactly.

Why here and not in a test module: spawned ranks import the function they run by its
module name, which must be importable in a fresh interpreter. Without BatchNorm, N
ranks with batch B and one process with batch N*B compute the same gradients, so their
loss curves agree to float rounding — the test of the data sharding, gradient
averaging and statistics reduction of :mod:`hwnas.search.training`.
"""
from __future__ import annotations

from typing import Any


def bn_free_losses(rt: Any, batch_size: int, epochs: int = 2, seed: int = 0) -> list[float]:
    """Per-step (rank-averaged) losses of a small conv net on the synthetic dataset."""
    import torch
    from torch import nn

    from hwnas.run_section import OptimOptions
    from hwnas.search.datasets.builtin import SyntheticDataset
    from hwnas.search.distributed import wrap
    from hwnas.search.training import make_optimizer, train_pass

    data = SyntheticDataset(SyntheticDataset.Options(resolution=8, channels=1, samples=300, num_classes=4,
                                                     valid_fraction=0.0, test_fraction=0.0, max_train=256),
                            seed=seed)
    torch.manual_seed(seed)
    model = rt.model(nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                   nn.Flatten(), nn.Linear(32, 4)))
    o = OptimOptions(lr=0.2, momentum=0.9)
    opt = make_optimizer(model.parameters(), o)
    ddp = wrap(model, rt)
    losses: list[float] = []
    for epoch in range(epochs):
        loader = data.loader("train", batch_size=batch_size, shuffle=True, seed=epoch, rank=rt.rank,
                             world=rt.world, drop_last=rt.distributed)
        losses += train_pass(ddp, loader, opt, o, runtime=rt).losses
    return losses


def rank_sum_range(rt: Any, n: int) -> list[float]:
    """``[0, 1, ..., n-1]`` times the sum of (rank + 1) over the ranks, all-reduced: a large
    result (``n`` floats) that every rank helped to compute, for the spawner's reply path."""
    from hwnas.search.training import all_reduce_sum

    return all_reduce_sum([float(i * (rt.rank + 1)) for i in range(n)], rt)


def fail_on_rank(rt: Any, bad_rank: int) -> list[float]:
    """A user error in one rank while the others enter a collective it never joins."""
    from hwnas.errors import ConfigError
    from hwnas.search.training import all_reduce_sum

    if rt.rank == bad_rank:
        raise ConfigError(f"rank {bad_rank}: a bad input")
    return all_reduce_sum([1.0], rt)
