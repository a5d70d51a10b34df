"""Pascal VOC layout reader: ``JPEGImages/``, ``Annotations/*.xml``, ``ImageSets/Main/{split}.txt``.

The XML gives the image ``size`` (width, height, depth) and ``object`` entries with a
``name``, a ``difficult`` flag and a ``bndbox`` in VOC's 1-based inclusive pixel
coordinates; they become continuous coordinates ``(xmin - 1, ymin - 1, xmax, ymax)``.
A missing size, a box outside the image or an unknown class stops the read with one
line naming the XML file and the object (nothing is dropped silently). XML is parsed
with the standard library's expat parser, which does not resolve external entities.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from hwnas.errors import InputError
from hwnas.search.detection.records import ImageRecord, check_box, make_record


def _text(node: ET.Element | None, tag: str, where: str, item: str) -> str:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None or not child.text.strip():
        raise InputError(f"{where}: {item}: missing <{tag}>")
    return child.text.strip()


def _number(node: ET.Element | None, tag: str, where: str, item: str) -> float:
    raw = _text(node, tag, where, item)
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{where}: {item}: <{tag}> must be a number, got {raw!r}") from None


def read_voc_xml(path: Path, classes: dict[str, int] | None, image_dir: Path, image_id: int = 0) -> ImageRecord:
    """One annotation file; ``classes`` maps names to labels (None: label -1, names only,
    used while discovering the class list)."""
    where = str(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{where}: not a readable VOC XML file ({exc})") from None
    size = root.find("size")
    if size is None:
        raise InputError(f"{where}: missing <size> (width and height of the image)")
    width, height = int(_number(size, "width", where, "size")), int(_number(size, "height", where, "size"))
    if width <= 0 or height <= 0:
        raise InputError(f"{where}: size: width and height must be > 0, got {width}x{height}")
    filename = root.findtext("filename") or f"{path.stem}.jpg"
    rows = []
    for i, obj in enumerate(root.findall("object")):
        name = _text(obj, "name", where, f"object {i}")
        item = f"object {i} ({name})"
        bb = obj.find("bndbox")
        if bb is None:
            raise InputError(f"{where}: {item}: missing <bndbox>")
        box = (_number(bb, "xmin", where, item) - 1, _number(bb, "ymin", where, item) - 1,
               _number(bb, "xmax", where, item), _number(bb, "ymax", where, item))
        check_box(where, item, box, width, height)
        diff = (obj.findtext("difficult") or "0").strip() == "1"
        if classes is not None and name not in classes:
            raise InputError(f"{where}: {item}: class {name!r} is not one of {sorted(classes)}")
        rows.append((*box, classes[name] if classes is not None else -1, diff, name))
    return make_record(image_dir / filename, width, height, rows, image_id)


def voc_split_ids(root: Path, split: str) -> list[str]:
    """Image ids listed in ``ImageSets/Main/{split}.txt`` (one line naming the file if absent)."""
    path = root / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        raise InputError(f"dataset.root: {path} not found (VOC layout: ImageSets/Main/{{train,val,test}}.txt)")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def read_voc(root: Path, split: str, classes: dict[str, int] | None) -> list[ImageRecord]:
    """Every image of a VOC split, in the order of its ImageSets file."""
    ann = root / "Annotations"
    out = []
    for k, stem in enumerate(voc_split_ids(root, split)):
        path = ann / f"{stem}.xml"
        if not path.is_file():
            raise InputError(f"{root / 'ImageSets' / 'Main' / (split + '.txt')}: line {k + 1}: "
                             f"annotation {path} not found")
        out.append(read_voc_xml(path, classes, root / "JPEGImages", k))
    return out


def voc_class_names(root: Path, split: str) -> list[str]:
    """Sorted class names found in a split's annotations (the label order when the
    config gives none)."""
    names: set[str] = set()
    for rec in read_voc(root, split, None):
        names.update(rec.names)
    return sorted(names)
