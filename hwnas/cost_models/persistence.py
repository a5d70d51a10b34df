"""Saving and loading fitted cost models without pickle.

Why this format: a model folder must be safe to load from anyone (no code execution:
JSON and a torch ``state_dict`` read with ``weights_only=True``), readable across
versions (hyperparameters and tables are plain JSON), and self-checking: a manifest
lists the sha256 of every file, so a tampered or truncated file is refused with a
clear error instead of producing silently wrong costs. The table travels inside, so a
loaded model predicts standalone.

Layout::

    model.json      {"format": 1, "model": name, "params": {...}, "state": {...}}
    weights.pt      torch state_dict (torch models only)
    manifest.json   {"files": {name: sha256}, "device": ..., "training": ..., "meta": ...}
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any, Mapping

from hwnas import registry
from hwnas.errors import CostModelError, HwnasError
from hwnas.inputs import file_sha256, first_line

FORMAT = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
MANIFEST_FILE = "manifest.json"


def _jsonable(obj: Any) -> Any:
    """Plain JSON values (NumPy scalars and tuples converted, NaN refused)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # a typed option group (e.g. FitSchedule)
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise CostModelError(f"cannot save a non-finite value {obj!r}")
    return obj


def save_model(model: Any, directory: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a fitted model to ``directory`` (created); returns the folder.

    ``meta`` goes into the manifest: ``device`` (the fingerprint or record the data came
    from), ``training`` (a summary: networks, target, split) and anything else.
    """
    import torch

    name = getattr(model, "registry_name", None)
    if not name or name == "cost_model":
        raise CostModelError(f"cannot save {type(model).__name__}: not a registered cost model")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "model": name, "params": _jsonable(model.get_params()),
           "state": _jsonable(model.state())}
    (out / MODEL_FILE).write_text(json.dumps(doc, sort_keys=True, indent=1))
    files = [MODEL_FILE]
    tensors = model.tensors()
    if tensors is not None:
        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, out / WEIGHTS_FILE)
        files.append(WEIGHTS_FILE)
    elif (out / WEIGHTS_FILE).exists():
        (out / WEIGHTS_FILE).unlink()
    meta = dict(meta or {})
    manifest = {
        "format": FORMAT,
        "model": name,
        "files": {f: file_sha256(out / f) for f in files},
        "device": _jsonable(meta.pop("device", None)),
        "training": _jsonable(meta.pop("training", {"networks": getattr(model, "n_train_", None)})),
        "meta": _jsonable(meta),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True, indent=1))
    return out


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest, after checking every listed file against its sha256."""
    d = Path(directory)
    mpath = d / MANIFEST_FILE
    if not mpath.is_file():
        raise CostModelError(f"{d}: not a cost-model folder (no {MANIFEST_FILE})")
    try:
        manifest = json.loads(mpath.read_text())
        files = dict(manifest["files"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CostModelError(f"{mpath}: unreadable manifest ({exc}); the file is damaged") from None
    if manifest.get("format") != FORMAT:
        raise CostModelError(f"{mpath}: model format {manifest.get('format')!r}, this hwnas reads {FORMAT}")
    if MODEL_FILE not in files:
        raise CostModelError(f"{mpath}: manifest does not list {MODEL_FILE}")
    for name, digest in files.items():
        f = d / name
        if Path(name).name != name:
            raise CostModelError(f"{mpath}: bad file name {name!r} in manifest")
        if not f.is_file():
            raise CostModelError(f"{d}: {name} is missing")
        if file_sha256(f) != digest:
            raise CostModelError(f"{f}: sha256 does not match the manifest; the file was modified or truncated")
    return manifest


def load_model(directory: str | Path) -> Any:
    """Load a model saved by :func:`save_model` from its folder (a shipped ``asset:NAME`` is
    resolved to its folder by the caller, :func:`hwnas.assets.resolve_path`); refuses any
    file that fails its check."""
    import torch

    if str(directory).startswith("asset:"):  # resolved where it was read (hwnas.assets.resolve_path), never here
        raise CostModelError(f"{directory}: an asset reference; load the path hwnas.assets.resolve_path gives")
    d = Path(directory)
    manifest = read_manifest(d)
    try:
        doc = json.loads((d / MODEL_FILE).read_text())
        name, params, state = doc["model"], dict(doc["params"]), dict(doc["state"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CostModelError(f"{d / MODEL_FILE}: unreadable model file ({exc})") from None
    try:
        cls = registry.get("cost_model", name)
        model = cls.from_params(params)
    except (HwnasError, TypeError) as exc:
        raise CostModelError(f"{d}: cannot rebuild cost model {name!r} ({exc})") from None
    tensors = None
    if WEIGHTS_FILE in manifest["files"]:
        try:
            tensors = torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a bad archive
            raise CostModelError(f"{d / WEIGHTS_FILE}: cannot read weights ({exc})") from None
    _check_finite(d, state, tensors)
    try:
        model.restore(state, tensors)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        what = f"field {exc.args[0]!r} missing" if isinstance(exc, KeyError) else first_line(exc, 120)
        raise CostModelError(f"{d / MODEL_FILE}: damaged model state ({what})") from None
    model.manifest_ = manifest
    return model


def _check_finite(d: Path, state: Any, tensors: Mapping[str, Any] | None) -> None:
    """Refuse NaN / infinite numbers in the saved state or weights: such a model would
    predict NaN for every network and a search would silently rank nothing."""
    import math

    def walk(obj: Any, where: str) -> None:
        if isinstance(obj, float) and not math.isfinite(obj):
            raise CostModelError(f"{d / MODEL_FILE}: non-finite value {obj} at {where or '/'}")
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, f"{where}/{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{where}/{i}")

    walk(state, "")
    for k, t in (tensors or {}).items():
        if hasattr(t, "isfinite") and t.is_floating_point() and not bool(t.isfinite().all()):
            raise CostModelError(f"{d / WEIGHTS_FILE}: weight {k!r} holds NaN or infinite values")
