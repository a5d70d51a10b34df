"""Shipped hardware assets: fitted cost models and cost tables, addressed as ``asset:NAME``.

Why: a new user should be able to run a hardware-aware search before profiling
anything, and bring a new device with ten measurements (few-shot transfer from a
shipped multi-device base). Each asset is a folder under ``hwnas/assets/data/`` with an
``asset.json`` manifest — what it is, where and when it was measured, provenance and
licence, metrics on held-out data, and the sha256 of every file — built by
``make assets`` (:mod:`hwnas.assets.build`) from the shared datasets, never by hand.

Kinds: ``cost_model`` (a model folder, loaded by :func:`hwnas.cost_models.load_model`),
``store`` (a cost store as JSON, materialised into a private SQLite copy when used,
because the store writes to its file and the installed asset must stay untouched), and
``table`` (a whole-network CSV, as the hardware objective's ``table`` reads). Every use
re-checks the sha256 of the files, so a modified asset is refused, not trusted.

This module stays free of heavy imports: config loading asks it whether a reference names
an asset of the right kind (:func:`check_ref`). Layers below the edge never import it: they
receive the path :func:`resolve_path` gives (the import contracts in ``make lint`` hold
that).
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import AssetError
from hwnas.inputs import file_sha256 as sha256

PREFIX = "asset:"
DATA_DIR = Path(__file__).resolve().parent / "data"
MANIFEST = "asset.json"
KINDS = ("cost_model", "store", "table")
#: The file of a table / store asset inside its folder.
PAYLOAD = {"store": "store.json", "table": "table.csv.gz"}


def is_ref(value: Any) -> bool:
    """True for ``asset:NAME`` (a str or a Path made from one)."""
    return str(value).startswith(PREFIX)


@dataclass(frozen=True)
class Asset:
    """One shipped asset: its folder and its manifest."""

    name: str
    dir: Path
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind"))

    @property
    def version(self) -> int:
        return int(self.meta.get("version", 0))

    @property
    def files(self) -> dict[str, str]:
        return dict(self.meta.get("files") or {})

    @property
    def size_bytes(self) -> int:
        return sum((self.dir / f).stat().st_size for f in self.files if (self.dir / f).is_file())

    def verify(self) -> "Asset":
        """Check every listed file against its sha256; raise on any difference."""
        if not self.files:
            raise AssetError(f"asset {self.name}: {self.dir / MANIFEST} lists no files")
        for rel, digest in self.files.items():
            f = self.dir / rel
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise AssetError(f"asset {self.name}: bad file name {rel!r} in {MANIFEST}")
            if not f.is_file():
                raise AssetError(f"asset {self.name}: {rel} is missing; reinstall hwnas or rerun `make assets`")
            if sha256(f) != digest:
                raise AssetError(f"asset {self.name}: {rel} does not match its sha256 in {MANIFEST}; the asset was "
                                 "modified or truncated — reinstall hwnas or rerun `make assets`")
        return self

    def summary(self) -> dict[str, Any]:
        m = self.meta
        return {"name": self.name, "version": self.version, "kind": self.kind, "space": m.get("space"),
                "device": m.get("device"), "title": m.get("title", ""), "headline": m.get("headline", ""),
                "size_kb": round(self.size_bytes / 1024, 1), "path": str(self.dir)}


def _read(folder: Path) -> Asset:
    mpath = folder / MANIFEST
    try:
        meta = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AssetError(f"{mpath}: unreadable asset manifest ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") not in KINDS or meta.get("name") != folder.name:
        raise AssetError(f"{mpath}: not an asset manifest (needs name {folder.name!r} and kind in {', '.join(KINDS)})")
    return Asset(folder.name, folder, meta)


def list_assets(data_dir: Path | None = None) -> list[Asset]:
    """Every shipped asset, by name (manifests read, files not yet checked)."""
    root = data_dir or DATA_DIR
    if not root.is_dir():
        return []
    return [_read(d) for d in sorted(root.iterdir()) if (d / MANIFEST).is_file()]


def get(ref: str, data_dir: Path | None = None) -> Asset:
    """An asset by ``NAME``, ``asset:NAME`` or ``asset:NAME@VERSION``; unknown names list close ones."""
    text = str(ref)[len(PREFIX):] if is_ref(ref) else str(ref)
    name, _, version = text.partition("@")
    assets = {a.name: a for a in list_assets(data_dir)}
    if name not in assets:
        close = difflib.get_close_matches(name, list(assets), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; `hwnas assets ls` lists all {len(assets)}"
        raise AssetError(f"unknown asset {name!r}{hint}")
    asset = assets[name]
    if version and version != str(asset.version):
        raise AssetError(f"asset {name} is version {asset.version} in this hwnas, {text!r} asks for {version}")
    return asset


def check_ref(ref: str | Path, kind: str) -> Asset:
    """The asset behind ``ref`` if it exists and is of ``kind`` (no file check yet)."""
    asset = get(str(ref))
    if asset.kind != kind:
        raise AssetError(f"asset {asset.name} is a {asset.kind}, not a {kind}; `hwnas assets ls` shows each kind")
    return asset


def resolve_path(ref: str | Path, kind: str | None = None) -> Path:
    """The local path behind ``asset:NAME`` after its sha256 check: the model folder,
    the table file, or a private SQLite copy of a store. A plain path is returned as is.

    The one function the edge calls — where user input is read: the command line
    (:mod:`hwnas.cli`), and the cost-source factory
    (:func:`hwnas.cost_models.source.open_source`) for config sections; config loading
    only checks that a reference names an asset of the right kind. Everything below takes
    the path this returns (``Store(path)``, ``load_model(path)``), never a reference."""
    if not is_ref(ref):
        return Path(ref)
    asset = check_ref(ref, kind) if kind is not None else get(str(ref))
    asset.verify()
    if asset.kind == "cost_model":
        return asset.dir
    if asset.kind == "table":
        return asset.dir / PAYLOAD["table"]
    from hwnas.assets.stores import materialise

    return materialise(asset)


def describe(ref: str) -> dict[str, Any]:
    """The full manifest of one asset, after checking its files (``hwnas assets show``)."""
    asset = get(ref).verify()
    return {**asset.meta, "path": str(asset.dir), "size_kb": round(asset.size_bytes / 1024, 1), "verified": True}


def render(meta: dict[str, Any]) -> str:
    """Human text of :func:`describe`: the scalar fields, then each section on its own lines."""
    lines = [f"{meta['name']} (v{meta.get('version')}, {meta.get('kind')}): {meta.get('title', '')}"]
    for key in ("description", "space", "device", "target", "unit", "provenance", "licence", "path", "size_kb"):
        if meta.get(key) not in (None, "", {}):
            lines.append(f"  {key}: {meta[key] if not isinstance(meta[key], dict) else json.dumps(meta[key])}")
    for key in ("measured", "metrics", "built"):
        section = meta.get(key) or {}
        if section:
            lines.append(f"  {key}:")
            lines += [f"    {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in section.items()]
    lines.append(f"  files: {len(meta.get('files') or {})}, sha256 verified")
    return "\n".join(lines)
