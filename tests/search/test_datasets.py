"""Datasets from local files only: real digits, synthetic, and tiny fake CIFAR / SVHN / folders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwnas.config import parse_options
from hwnas.errors import ConfigError
from hwnas.registry import get


def make(name: str, seed: int = 0, **opts: Any) -> Any:
    cls = get("dataset", name)
    return cls(parse_options(cls.Options, opts, "dataset"), seed=seed)


def test_digits_splits_are_seeded_and_disjoint() -> None:
    d = make("digits", resolution=16, channels=3)
    x, y = d.arrays("train")
    assert x.shape[1:] == (3, 16, 16) and d.num_classes == 10
    assert d.size("train") + d.size("valid") + d.size("test") == 1797
    assert abs(float(x.mean())) < 1e-3  # normalised with training statistics
    again = make("digits", resolution=16, channels=3)
    np.testing.assert_array_equal(again.arrays("valid")[1], d.arrays("valid")[1])
    other = make("digits", seed=1, resolution=16, channels=3)
    assert not np.array_equal(other.arrays("valid")[1], d.arrays("valid")[1])
    xb, yb = next(iter(d.loader("train", batch_size=8, shuffle=True, seed=0)))
    assert tuple(xb.shape) == (8, 3, 16, 16) and yb.dtype.is_floating_point is False


def test_synthetic_and_max_train() -> None:
    d = make("synthetic", num_classes=4, samples=200, resolution=8, channels=1, max_train=50)
    assert d.size("train") == 50 and d.num_classes == 4 and d.arrays("test")[0].shape[1:] == (1, 8, 8)


def _cifar_records(n: int, label_bytes: int, rng: np.random.Generator) -> bytes:
    labels = rng.integers(10, size=(n, label_bytes), dtype=np.uint8)
    pixels = rng.integers(256, size=(n, 3072), dtype=np.uint8)
    return np.concatenate([labels, pixels], axis=1).tobytes()


def test_cifar10_binary(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        (tmp_path / f"data_batch_{i}.bin").write_bytes(_cifar_records(4, 1, rng))
    (tmp_path / "test_batch.bin").write_bytes(_cifar_records(3, 1, rng))
    d = make("cifar10", root=tmp_path, valid_fraction=0.25)
    assert d.size("train") == 15 and d.size("valid") == 5 and d.size("test") == 3
    assert d.arrays("train")[0].shape[1:] == (3, 32, 32)


def test_cifar100_and_missing_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "train.bin").write_bytes(_cifar_records(6, 2, rng))
    (tmp_path / "test.bin").write_bytes(_cifar_records(2, 2, rng))
    assert make("cifar100", root=tmp_path, labels="coarse").num_classes == 0  # lazy until used
    assert make("cifar100", root=tmp_path).prepare().num_classes == 100
    with pytest.raises(ConfigError, match=r"dataset\.root: .*data_batch_1\.bin .*CIFAR-10 binary version"):
        make("cifar10", root=tmp_path / "nowhere").prepare()


def test_svhn_mat(tmp_path: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for name, n in (("train_32x32.mat", 6), ("test_32x32.mat", 2)):
        savemat(tmp_path / name, {"X": rng.integers(256, size=(32, 32, 3, n), dtype=np.uint8),
                                  "y": np.array([[10], [1], [2], [3], [4], [5]][:n], dtype=np.uint8)})
    d = make("svhn", root=tmp_path, valid_fraction=0.0, resolution=16)
    x, y = d.arrays("test")
    assert x.shape == (2, 3, 16, 16) and sorted(y.tolist()) == [0, 1]  # label 10 means digit 0


def test_imagefolder_png(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(256, size=(10, 12, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    d = make("imagefolder", root=tmp_path, resolution=8, channels=1, valid_fraction=0.2, test_fraction=0.2)
    d.prepare()
    assert d.num_classes == 2 and d.arrays("train")[0].shape[1:] == (1, 8, 8)
    assert d.size("train") + d.size("valid") + d.size("test") == 10
    with pytest.raises(ConfigError, match="folder not found"):
        make("imagefolder", root=tmp_path / "none").prepare()
