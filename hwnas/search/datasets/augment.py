"""Training-time augmentation written in torch (no torchvision), configured in YAML.

The standard CIFAR/ImageNet recipe: random crop with zero padding, random resized
crop, horizontal flip, cutout, and per-channel normalisation. YAML (``dataset.augment``)::

    augment: {crop_padding: 4, random_resized_crop: false, rrc_scale_min: 0.08,
              hflip: true, cutout: 16, normalize: true}

Why per item and seeded per item: an image's augmentation is drawn from a generator
seeded by (loader seed, item index) — :func:`item_generator` — so the same epoch gives
the same augmented batches whatever the number of DataLoader workers and whichever
worker reads the item; callers vary the loader seed per epoch. The random parts apply
to the training split only; normalisation (statistics of the training split) to every
split, since a network trained on normalised inputs must be scored on them too.

Order: (random resized crop | padded random crop) -> flip -> normalise -> cutout
(cutout after normalisation, so the erased square is the mean image value, 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from hwnas.config import opt
from hwnas.errors import ConfigError


@dataclass(frozen=True)
class AugmentOptions:
    """``dataset.augment``: which training-time augmentations run (all off by default)."""

    crop_padding: int = opt(0, min=0, max=64, help="random crop after zero padding by this many pixels (0 = off)")
    random_resized_crop: bool = opt(False, help="random resized crop (Inception-style) to the resolution")
    rrc_scale_min: float = opt(0.08, gt=0.0, max=1.0, help="smallest area share a random resized crop keeps")
    hflip: bool = opt(False, help="horizontal flip with probability 1/2")
    cutout: int = opt(0, min=0, max=512, help="side of the square erased at a random place (0 = off)")
    normalize: bool = opt(True, help="per-channel mean/std normalisation (training-split statistics, every split)")

    def check(self) -> None:
        if self.random_resized_crop and self.crop_padding:
            raise ConfigError("crop_padding: choose either a padded random crop or random_resized_crop, not both")

    @property
    def random(self) -> bool:
        """Whether any random transform is on (the training split then differs per epoch)."""
        return bool(self.crop_padding or self.random_resized_crop or self.hflip or self.cutout)


def item_generator(seed: int, index: int) -> torch.Generator:
    """The generator of one item's augmentation: a function of (seed, index) only."""
    mixed = (int(seed) * 0x9E3779B1 + int(index) * 0x85EBCA77 + 0x165667B1) % (2 ** 63 - 1)
    return torch.Generator().manual_seed(mixed)


def _uniform(g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, high: int) -> int:
    """An integer in [0, high] (inclusive)."""
    return int(torch.randint(0, high + 1, (), generator=g))


def padded_crop(x: torch.Tensor, padding: int, g: torch.Generator, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Pad ``x`` (C x H x W) by ``padding`` on each side with zeros (or the per-channel
    ``fill``: black in normalised units), crop back to H x W at random."""
    if padding <= 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (padding, padding, padding, padding))
    if fill is not None:
        border = torch.ones_like(padded, dtype=torch.bool)
        border[..., padding:padding + h, padding:padding + w] = False
        padded = torch.where(border, fill.view(-1, 1, 1).to(padded.dtype), padded)
    top, left = _randint(g, 2 * padding), _randint(g, 2 * padding)
    return padded[..., top:top + h, left:left + w]


def resized_crop_box(h: int, w: int, scale_min: float, g: torch.Generator,
                     ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop covering a share of the area in
    [scale_min, 1] with aspect ratio in ``ratio`` (log-uniform); the whole image when
    ten draws all fall outside it."""
    area = h * w
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(g, scale_min, 1.0)
        aspect = math.exp(_uniform(g, log_lo, log_hi))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return _randint(g, h - ch), _randint(g, w - cw), ch, cw
    return 0, 0, h, w


def random_resized_crop(x: torch.Tensor, size: int, scale_min: float, g: torch.Generator) -> torch.Tensor:
    """A random crop (see :func:`resized_crop_box`) resized bilinearly to ``size`` x ``size``."""
    top, left, ch, cw = resized_crop_box(x.shape[-2], x.shape[-1], scale_min, g)
    crop = x[..., top:top + ch, left:left + cw]
    return resize_image(crop, size)


def resize_image(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of one C x H x W image (no-op at the same size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]


def hflip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror left-right with probability 1/2."""
    return torch.flip(x, dims=(-1,)) if _uniform(g) < 0.5 else x


def cutout(x: torch.Tensor, side: int, g: torch.Generator) -> torch.Tensor:
    """Zero a ``side`` x ``side`` square centred at a random pixel (clipped at the border)."""
    if side <= 0:
        return x
    h, w = x.shape[-2:]
    cy, cx = _randint(g, h - 1), _randint(g, w - 1)
    y0, y1 = max(0, cy - side // 2), min(h, cy - side // 2 + side)
    x0, x1 = max(0, cx - side // 2), min(w, cx - side // 2 + side)
    out = x.clone()
    out[..., y0:y1, x0:x1] = 0.0
    return out


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel; ``mean`` and ``std`` have C elements."""
    return (x - mean.view(-1, 1, 1)) / std.view(-1, 1, 1)


class Augment:
    """The configured transforms of one split: ``aug(image, generator)`` -> image.

    ``train`` switches the random parts on; ``mean``/``std`` (C values, from the
    training split) are used when ``options.normalize``. ``normalized_input`` says the
    images arrive already normalised (in-memory datasets normalise once, up front): the
    transform then skips normalisation and pads with black in normalised units.
    """

    def __init__(self, options: AugmentOptions, *, resolution: int, train: bool,
                 mean: Sequence[float] | torch.Tensor | None = None,
                 std: Sequence[float] | torch.Tensor | None = None, normalized_input: bool = False) -> None:
        self.options = options
        self.resolution = int(resolution)
        self.train = bool(train)
        self.normalized_input = bool(normalized_input)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32).flatten()
        if options.normalize and (self.mean is None or self.std is None):
            raise ConfigError("dataset.augment.normalize: needs the training split's mean and std")
        self.fill = None
        if normalized_input and options.normalize:
            self.fill = normalize(torch.zeros(len(self.mean), 1, 1), self.mean, self.std).flatten()  # type: ignore

    @property
    def random(self) -> bool:
        return self.train and self.options.random

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        o = self.options
        if self.random and g is None:
            raise ValueError("Augment: a random transform needs a generator (see item_generator)")
        if self.random and o.random_resized_crop:
            x = random_resized_crop(x, self.resolution, o.rrc_scale_min, g)  # type: ignore[arg-type]
        else:
            x = resize_image(x, self.resolution)
            if self.random and o.crop_padding:
                x = padded_crop(x, o.crop_padding, g, self.fill)  # type: ignore[arg-type]
        if self.random and o.hflip:
            x = hflip(x, g)  # type: ignore[arg-type]
        if o.normalize and not self.normalized_input:
            x = normalize(x, self.mean, self.std)  # type: ignore[arg-type]
        if self.random and o.cutout:
            x = cutout(x, o.cutout, g)  # type: ignore[arg-type]
        return x.contiguous()


__all__ = ["AugmentOptions", "Augment", "cutout", "hflip", "item_generator", "normalize", "padded_crop",
           "random_resized_crop", "resize_image", "resized_crop_box"]
