"""The lazy data pipeline: per-item reads, Tiny-ImageNet's val layout, augmentation on the
training split only, workers giving the same batches as the main process, in-memory
and lazy reads agreeing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hwnas.config import parse_options
from hwnas.errors import ConfigError
from hwnas.registry import get
from hwnas.search.datasets.pipeline import SplitData


def make(name: str, seed: int = 0, **opts: Any) -> Any:
    cls = get("dataset", name)
    return cls(parse_options(cls.Options, opts, "dataset"), seed=seed)


def _cifar(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        rec = np.concatenate([rng.integers(10, size=(8, 1), dtype=np.uint8),
                              rng.integers(256, size=(8, 3072), dtype=np.uint8)], axis=1)
        (tmp_path / f"data_batch_{i}.bin").write_bytes(rec.tobytes())
    (tmp_path / "test_batch.bin").write_bytes((tmp_path / "data_batch_1.bin").read_bytes())
    return tmp_path


def _tiny_imagenet(root: Path, n: int = 4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    wnids = ["n01443537", "n01629819"]
    for w in wnids:
        (root / "train" / w / "images").mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(256, size=(16, 16, 3), dtype=np.uint8)).save(
                root / "train" / w / "images" / f"{w}_{i}.JPEG", format="JPEG")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for i in range(3):
        Image.fromarray(rng.integers(256, size=(16, 16, 3), dtype=np.uint8)).save(
            root / "val" / "images" / f"val_{i}.JPEG", format="JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[i % 2]}\t0\t0\t15\t15")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def test_tiny_imagenet_layout_read_lazily(tmp_path: Path) -> None:
    root = _tiny_imagenet(tmp_path / "tiny")
    d = make("imagefolder", root=root, resolution=8, valid_fraction=0.25)
    d.prepare()
    assert d.num_classes == 2 and d.size("test") == 3 and d.size("train") == 6 and d.size("valid") == 2
    ds = d.torch_dataset("test")
    assert isinstance(ds, SplitData) and not d._arrays  # nothing decoded up front
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and y == 0
    labels = [int(b[1]) for b in ds]
    assert labels == [0, 1, 0]  # from val_annotations.txt
    eager = make("imagefolder", root=root, resolution=8, valid_fraction=0.25, in_memory=True)
    xe, _ = eager.arrays("test")
    lazy = torch.stack([ds[i][0] for i in range(3)]).numpy()
    np.testing.assert_allclose(lazy, xe, atol=1e-5)  # the same images, normalised alike
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\n")
    with pytest.raises(ConfigError, match=r"val_annotations.txt:1: expected .*class of train"):
        make("imagefolder", root=root, resolution=8).prepare()


def test_augmentation_train_only_seeded_and_worker_independent(tmp_path: Path) -> None:
    aug = {"crop_padding": 4, "hflip": True, "cutout": 8}
    d = make("cifar10", root=_cifar(tmp_path), valid_fraction=0.25, augment=aug, in_memory=False)
    a = torch.cat([x for x, _ in d.loader("train", batch_size=8, shuffle=True, seed=3)])
    b = torch.cat([x for x, _ in d.loader("train", batch_size=8, shuffle=True, seed=3)])
    c = torch.cat([x for x, _ in d.loader("train", batch_size=8, shuffle=True, seed=4)])
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded per epoch (callers vary the seed)
    plain = make("cifar10", root=tmp_path, valid_fraction=0.25, in_memory=False)
    va = torch.cat([x for x, _ in d.loader("valid", batch_size=8, shuffle=False)])
    vp = torch.cat([x for x, _ in plain.loader("valid", batch_size=8, shuffle=False)])
    assert torch.equal(va, vp)  # no augmentation outside the training split
    workers = make("cifar10", root=tmp_path, valid_fraction=0.25, augment=aug, in_memory=False, workers=2)
    w = torch.cat([x for x, _ in workers.loader("train", batch_size=8, shuffle=True, seed=3)])
    assert torch.equal(a, w)  # 2 worker processes give the very same batches
    mem = make("cifar10", root=tmp_path, valid_fraction=0.25, augment=aug, in_memory=True)
    m = torch.cat([x for x, _ in mem.loader("train", batch_size=8, shuffle=True, seed=3)])
    assert m.shape == a.shape and torch.allclose(m, a, atol=1e-4)  # in memory: the same augmentation


def test_dataset_options_validated() -> None:
    with pytest.raises(ConfigError, match=r"dataset.augment.cutout: must be >= 0"):
        make("digits", augment={"cutout": -2})
    with pytest.raises(ConfigError, match=r"dataset.pin_memory: expected one of 'auto', True, False"):
        make("digits", pin_memory="yes")
    with pytest.raises(ConfigError, match=r"dataset.augment: expected a mapping"):
        make("digits", augment=3)
