"""Detection datasets ``voc`` and ``coco``: lazy image reading, augmentation, collate.

Unlike the classification sets, a batch is ``(images, targets)``: ``images`` is a float
``B x 3 x R x R`` tensor (resized to ``resolution``, normalised), ``targets`` a list of
one dict per image with ``boxes`` (N x 4, xyxy normalised to [0, 1]), ``labels`` (N,
int64 in ``[0, num_classes)``) and ``difficult`` (N, bool). Images are decoded when a
DataLoader worker asks for them. Splits come from the files (VOC ImageSets, one COCO
JSON per split), so no seeded re-splitting happens; the order of shuffled batches is
seeded by the loader seed alone. ``task = "detection"`` tells the dataset contract
suite (and search code) which batch layout to expect.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.config import opt
from hwnas.errors import ConfigError, InputError
from hwnas.registry import register
from hwnas.search.datasets.base import SPLITS, Dataset
from hwnas.search.detection.augment import DetAugmentOptions, augment
from hwnas.search.detection.records import ImageRecord

MEAN, STD = 127.5, 64.0


def read_image(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB (one line naming the file when it cannot be read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot read the image ({exc})") from None


def to_tensor(img: np.ndarray, resolution: int) -> torch.Tensor:
    """Resize (bilinear) an H x W x 3 image to ``resolution`` and normalise it."""
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    if t.shape[-2:] != (resolution, resolution):
        t = F.interpolate(t, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return ((t[0] - MEAN) / STD).contiguous()


class DetectionItems(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """One split's records as ``(image, target)`` items; augmentation seeded per item."""

    def __init__(self, records: list[ImageRecord], resolution: int, aug: DetAugmentOptions | None, seed: int) -> None:
        self.records, self.resolution, self.aug, self.seed = records, resolution, aug, seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rec = self.records[i]
        img = read_image(rec.image)
        if img.shape[:2] != (rec.height, rec.width):
            raise InputError(f"{rec.image}: image is {img.shape[1]}x{img.shape[0]}, its annotation says "
                             f"{rec.width}x{rec.height}")
        boxes, keep = rec.boxes.copy(), np.arange(rec.n)
        if self.aug is not None and self.aug.any:
            img, boxes, keep = augment(img, boxes, self.aug, np.random.default_rng([self.seed, i]))
        h, w = img.shape[:2]
        norm = boxes / np.array([w, h, w, h], dtype=np.float32)
        target = {"boxes": torch.from_numpy(np.clip(norm, 0, 1)).float().reshape(-1, 4),
                  "labels": torch.from_numpy(rec.labels[keep]).long(),
                  "difficult": torch.from_numpy(rec.difficult[keep]).bool()}
        return to_tensor(img, self.resolution), target


def collate(items: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Stack images; keep targets as a list (images hold different numbers of boxes)."""
    return torch.stack([x for x, _ in items]), [t for _, t in items]


@dataclass(frozen=True)
class DetectionOptions:
    """Options both detection layouts share."""

    root: Path = opt(Path("data"), help="dataset folder (relative to the YAML file)")
    resolution: int = opt(300, min=16, max=1024, help="images are resized to resolution x resolution (SSD: 300)")
    classes: str = opt("", help="comma-separated class names in label order (empty: the names found in the "
                                "training split, sorted; COCO: category id order)")
    augment: DetAugmentOptions = opt(DetAugmentOptions(), help="training-time augmentation (train split only)")
    max_train: int = opt(0, min=0, help="cap on training images (0 = all)")
    workers: int = opt(0, min=0, max=64, help="DataLoader worker processes (0 = load in the main process)")


class DetectionDataset(Dataset):
    """Base of the detection layouts: records per split, items, loaders."""

    task = "detection"
    in_channels = 3
    split_option = {"train": "train_split", "valid": "valid_split", "test": "test_split"}

    def __init__(self, options: Any, *, seed: int = 0, base_dir: Path | None = None, **_: Any) -> None:
        self.options = options
        self.seed = int(seed)
        self.resolution = int(options.resolution)
        root = Path(options.root)
        self.root = root if root.is_absolute() or base_dir is None else Path(base_dir) / root
        self._records: dict[str, list[ImageRecord]] | None = None
        self.class_names: list[str] = []
        #: per split, annotations skipped by class name (COCO: categories outside ``classes``)
        self.skipped: dict[str, dict[str, int]] = {}

    def read_split(self, split: str) -> list[ImageRecord]:
        raise NotImplementedError

    def prepare(self) -> DetectionDataset:
        if self._records is None:
            recs = {s: self.read_split(s) for s in SPLITS}
            if self.options.max_train:
                recs["train"] = recs["train"][: self.options.max_train]
            self._records = recs
            self.num_classes = len(self.class_names)
            if self.num_classes < 1:
                raise ConfigError(f"dataset.root: no classes found in {self.root}")
        return self

    def records(self, split: str) -> list[ImageRecord]:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.prepare()._records[split]  # type: ignore[index]

    def size(self, split: str) -> int:
        return len(self.records(split))

    def torch_dataset(self, split: str, *, seed: int = 0) -> DetectionItems:
        aug = self.options.augment if split == "train" else None
        return DetectionItems(self.records(split), self.resolution, aug, seed)

    def loader(self, split: str, *, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
               world: int = 1, drop_last: bool = False) -> Any:
        from torch.utils.data import DataLoader

        from hwnas.search.datasets.pipeline import RankBatchSampler

        data = self.torch_dataset(split, seed=seed)
        sampler = RankBatchSampler(len(data), batch_size, shuffle=shuffle, seed=seed, rank=rank, world=world,
                                   drop_last=drop_last)
        return DataLoader(data, batch_sampler=sampler, num_workers=int(self.options.workers), collate_fn=collate)


@register("dataset", "voc")
class VOCDetection(DetectionDataset):
    """Pascal VOC layout: JPEGImages/, Annotations/*.xml, ImageSets/Main/{split}.txt (lazy, boxes + difficult)."""

    @dataclass(frozen=True)
    class Options(DetectionOptions):
        train_split: str = opt("train", help="ImageSets/Main file of the training split (VOC: trainval)")
        valid_split: str = opt("val", help="ImageSets/Main file scored during search")
        test_split: str = opt("test", help="ImageSets/Main file of the final test")

    def read_split(self, split: str) -> list[ImageRecord]:
        from hwnas.search.detection.data_voc import read_voc, voc_class_names

        if not self.class_names:
            given = [c.strip() for c in self.options.classes.split(",") if c.strip()]
            self.class_names = given or voc_class_names(self.root, self.options.train_split)
        name = getattr(self.options, self.split_option[split])
        return read_voc(self.root, name, {c: k for k, c in enumerate(self.class_names)})


@register("dataset", "coco")
class COCODetection(DetectionDataset):
    """COCO instances layout: {images}/ folders and annotations/instances_{split}.json (lazy, boxes + iscrowd)."""

    @dataclass(frozen=True)
    class Options(DetectionOptions):
        annotations: str = opt("annotations/instances_{split}.json", help="annotation file per split; {split} is "
                                                                        "replaced by the split's name")
        images: str = opt("{split}", help="image folder per split (COCO 2017: {split}2017 with train/val names)")
        train_split: str = opt("train", help="name of the training split (COCO: train2017 -> train)")
        valid_split: str = opt("val", help="name of the split scored during search")
        test_split: str = opt("test", help="name of the final test split")

    def read_split(self, split: str) -> list[ImageRecord]:
        from hwnas.search.detection.data_coco import coco_categories, read_coco

        name = getattr(self.options, self.split_option[split])
        path = self.root / self.options.annotations.format(split=name)
        cats = coco_categories(path)
        given = [c.strip() for c in self.options.classes.split(",") if c.strip()]
        by_name = {n: cid for cid, n in cats}
        if given:
            missing = [g for g in given if g not in by_name]
            if missing:
                raise ConfigError(f"dataset.classes: {', '.join(missing)} not among the categories of {path}")
            chosen = [(by_name[g], g) for g in given]
        else:
            chosen = cats
        if not self.class_names:
            self.class_names = [n for _, n in chosen]
        labels = {cid: k for k, (cid, _) in enumerate(chosen)}
        self.skipped[split] = {}
        return read_coco(path, self.root / self.options.images.format(split=name), labels, self.skipped[split])
