"""Augmentation transforms (hwnas.search.datasets.augment): shapes, what each does, seeding."""
from __future__ import annotations

import pytest
import torch

from hwnas.config import parse_options
from hwnas.errors import ConfigError
from hwnas.search.datasets.augment import (
    Augment,
    AugmentOptions,
    cutout,
    hflip,
    item_generator,
    padded_crop,
    random_resized_crop,
    resized_crop_box,
)


def _img(c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.arange(c * h * w, dtype=torch.float32).reshape(c, h, w) + 1.0


def test_options_validated_like_any_section():
    o = parse_options(AugmentOptions, {"crop_padding": 4, "hflip": True, "cutout": 16}, "dataset.augment")
    assert o.crop_padding == 4 and o.hflip and o.cutout == 16 and o.normalize and o.random
    assert not AugmentOptions().random
    with pytest.raises(ConfigError, match="dataset.augment.crop_padding: must be >= 0"):
        parse_options(AugmentOptions, {"crop_padding": -1}, "dataset.augment")
    with pytest.raises(ConfigError, match="dataset.augment.hflp: unknown option .*'hflip'"):
        parse_options(AugmentOptions, {"hflp": True}, "dataset.augment")
    with pytest.raises(ConfigError, match="dataset.augment.crop_padding: choose either"):
        parse_options(AugmentOptions, {"crop_padding": 4, "random_resized_crop": True}, "dataset.augment")


def test_padded_crop_is_a_shifted_window_of_the_padded_image():
    x = _img()
    seen = set()
    for i in range(40):
        y = padded_crop(x, 2, item_generator(0, i))
        assert y.shape == x.shape
        # every non-zero pixel of the crop is a pixel of x, shifted by the same offset
        nz = (y != 0).nonzero()
        r, c = nz[0, 1].item(), nz[0, 2].item()
        seen.add((r, c))
        assert torch.all((y == 0) | (y >= 1))
    assert len(seen) > 3  # the offset really varies


def test_flip_cutout_and_rrc():
    x = _img()
    flips = [torch.equal(hflip(x, item_generator(1, i)), torch.flip(x, dims=(-1,))) for i in range(50)]
    assert 10 < sum(flips) < 40
    y = cutout(x, 4, item_generator(2, 0))
    zeroed = int((y == 0).all(dim=0).sum())
    assert 4 <= zeroed <= 16 and x.min() > 0  # a square (clipped at the border) erased; input untouched
    z = random_resized_crop(_img(3, 20, 30), 16, 0.08, item_generator(3, 0))
    assert z.shape == (3, 16, 16)
    for i in range(20):
        top, left, h, w = resized_crop_box(20, 30, 0.5, item_generator(4, i))
        assert 0 <= top and top + h <= 20 and 0 <= left and left + w <= 30 and h * w >= 0.3 * 600


def test_augment_seeded_per_item_and_train_only():
    opts = AugmentOptions(crop_padding=2, hflip=True, cutout=3)
    mean, std = [1.0, 2.0, 3.0], [2.0, 2.0, 2.0]
    train = Augment(opts, resolution=8, train=True, mean=mean, std=std)
    a = train(_img(), item_generator(5, 7))
    b = train(_img(), item_generator(5, 7))
    c = train(_img(), item_generator(6, 7))
    assert torch.equal(a, b) and not torch.equal(a, c)
    test = Augment(opts, resolution=8, train=False, mean=mean, std=std)
    expect = (_img() - torch.tensor(mean).view(3, 1, 1)) / 2.0
    assert torch.allclose(test(_img()), expect)  # only normalisation outside the training split
    resized = Augment(AugmentOptions(normalize=False), resolution=4, train=False)(_img())
    assert resized.shape == (3, 4, 4)
    with pytest.raises(ConfigError, match="normalize"):
        Augment(AugmentOptions(), resolution=8, train=True)
