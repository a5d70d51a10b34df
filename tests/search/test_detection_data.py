"""Detection data: the synthetic set in both layouts, readers, augmentation, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import InputError
from hwnas.search.detection.augment import DetAugmentOptions, augment
from hwnas.search.detection.data_coco import read_coco
from hwnas.search.detection.data_voc import read_voc, read_voc_xml
from hwnas.search.detection.synth import CLASSES, SynthSpec, write_synthetic

LABELS = {c: k for k, c in enumerate(CLASSES)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("det") / "set", SynthSpec(n_train=12, n_val=4, n_test=4, size=48,
                                                                              difficult_below=12))


def test_both_layouts_hold_the_same_boxes_labels_and_ignore_flags(synth: Path) -> None:
    for split in ("train", "val", "test"):
        voc = read_voc(synth / "voc", split, LABELS)
        coco = read_coco(synth / "coco" / "annotations" / f"instances_{split}.json", synth / "coco" / split)
        assert len(voc) == len(coco) > 0
        for a, b in zip(voc, coco):
            assert a.image.name == b.image.name and a.image.is_file() and b.image.is_file()
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_array_equal(a.difficult, b.difficult)
            sides = np.minimum(a.boxes[:, 2] - a.boxes[:, 0], a.boxes[:, 3] - a.boxes[:, 1])
            np.testing.assert_array_equal(a.difficult, sides < 12)
    counts = np.bincount(np.concatenate([r.labels for r in read_voc(synth / "voc", "train", LABELS)]), minlength=3)
    assert (counts > 0).all()  # every class appears in training


def test_the_drawn_shape_lies_inside_its_box(synth: Path) -> None:
    """A box's centre holds the shape's flat fill colour, not the striped, noisy texture."""
    from PIL import Image

    rec = read_voc(synth / "voc", "train", LABELS)[0]
    img = np.asarray(Image.open(rec.image)).astype(float)
    for (x1, y1, x2, y2), lab, diff in zip(rec.boxes.astype(int), rec.labels, rec.difficult):
        if diff:  # JPEG chroma subsampling smears tiny shapes
            continue
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2 + (y2 - y1) // 4 * (CLASSES[lab] == "triangle")
        patch = img[cy - 1:cy + 2, cx - 1:cx + 2]
        assert patch.std(axis=(0, 1)).max() < 25  # a filled shape is one colour (JPEG noise aside)


def _box_image(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[10:30, 20:50] = 255
    return img, np.array([[20, 10, 50, 30]], dtype=np.float32)


@pytest.mark.parametrize("seed", range(12))
def test_augmentation_moves_boxes_with_the_image(seed: int) -> None:
    img, boxes = _box_image()
    o = DetAugmentOptions(photometric=False, expand=3.0, iou_crop=True, hflip=True)
    out, b, keep = augment(img, boxes, o, np.random.default_rng(seed))
    assert list(keep) == [0] and b.shape == (1, 4)
    x1, y1, x2, y2 = np.round(b[0]).astype(int)
    assert 0 <= x1 < x2 <= out.shape[1] and 0 <= y1 < y2 <= out.shape[0]
    inside = out[y1:y2, x1:x2].mean()
    mask = np.ones(out.shape[:2], bool)
    mask[max(0, y1 - 1):y2 + 1, max(0, x1 - 1):x2 + 1] = False
    assert inside > 250  # the white rectangle is where its box says
    assert out[mask].mean() < 120 if mask.any() else True  # and nowhere else (expand fills with the mean)


def _write_xml(path: Path, body: str) -> Path:
    path.write_text(f"<annotation><filename>a.jpg</filename>{body}</annotation>")
    return path


def test_voc_box_outside_the_image_names_file_and_object(tmp_path: Path) -> None:
    p = _write_xml(tmp_path / "bad.xml", "<size><width>40</width><height>30</height></size>"
                   "<object><name>circle</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax>"
                   "</bndbox></object><object><name>square</name><bndbox><xmin>5</xmin><ymin>5</ymin>"
                   "<xmax>41</xmax><ymax>20</ymax></bndbox></object>")
    with pytest.raises(InputError) as exc:
        read_voc_xml(p, LABELS, tmp_path)
    msg = str(exc.value)
    assert str(p) in msg and "object 1 (square)" in msg and "outside the 40x30 image" in msg and "\n" not in msg


def test_voc_missing_size_names_the_file(tmp_path: Path) -> None:
    p = _write_xml(tmp_path / "nosize.xml", "<object><name>circle</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                   "<xmax>10</xmax><ymax>10</ymax></bndbox></object>")
    with pytest.raises(InputError, match=r"nosize\.xml: missing <size>"):
        read_voc_xml(p, LABELS, tmp_path)
    p2 = _write_xml(tmp_path / "nowidth.xml", "<size><height>30</height></size>")
    with pytest.raises(InputError, match=r"nowidth\.xml: size: missing <width>"):
        read_voc_xml(p2, LABELS, tmp_path)


def test_coco_annotation_of_an_unknown_image_id_names_file_and_item(synth: Path, tmp_path: Path) -> None:
    src = synth / "coco" / "annotations" / "instances_val.json"
    data = json.loads(src.read_text())
    data["annotations"][2]["image_id"] = 999
    bad = tmp_path / "instances_val.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        read_coco(bad, synth / "coco" / "val")
    assert str(exc.value) == f"{bad}: annotations[2]: image_id 999 is not among the images' ids"


def test_detection_loader_batches_variable_box_counts(synth: Path) -> None:
    from hwnas.config import parse_component
    from hwnas.search.build import build_component

    ds = build_component(parse_component("dataset", {"type": "coco", "root": str(synth / "coco"),
                                                     "resolution": 32}), seed=0).prepare()
    assert ds.num_classes == 3 and ds.class_names == list(CLASSES) and ds.size("train") == 12
    x, targets = next(iter(ds.loader("test", batch_size=4, shuffle=False)))
    assert x.shape == (4, 3, 32, 32) and len(targets) == 4
    recs = ds.records("test")
    for t, rec in zip(targets, recs):  # boxes normalised by the original size, labels untouched
        np.testing.assert_allclose(t["boxes"].numpy(), rec.boxes / 48, atol=1e-6)
        np.testing.assert_array_equal(t["labels"].numpy(), rec.labels)
