"""Checkpoint files: JSON for everything readable, a torch file for tensors.

A component's ``state_dict`` may mix plain values (controller populations, RNG
states) with tensors (policy weights, optimizer moments, supernet weights). We keep
the readable part as JSON, replace each tensor by a reference, and store the tensors
alone with ``torch.save`` so they load with ``weights_only=True`` (no pickle of
arbitrary objects). Dicts with non-string keys (torch optimizer states) are encoded
as item lists so they come back with their int keys. The JSON file is written last
and names its tensor file, so a kill at any moment leaves the previous checkpoint whole.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError

JSON_NAME = "checkpoint.json"


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "shape")


def encode(obj: Any, tensors: dict[str, Any], path: str = "") -> Any:
    """A JSON-able copy of ``obj``; tensors move to ``tensors`` under their path."""
    if _is_tensor(obj):
        tensors[path] = obj.detach().cpu().clone()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: encode(v, tensors, f"{path}/{k}") for k, v in obj.items()}
        return {"__items__": [[k, encode(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalars
        return obj.item()
    raise HwnasError(f"checkpoint: cannot store {type(obj).__name__} at {path or '/'}")


def decode(obj: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: decode(v, tensors) for k, v in obj["__items__"]}
        return {k: decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v, tensors) for v in obj]
    return obj


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, state: dict[str, Any], step: int) -> Path:
    """Write ``state`` (tensors to ``checkpoint-STEP.pt``), then the JSON; drop older tensor files."""
    import torch

    run_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Any] = {}
    doc = encode(state, tensors)
    pt_name = f"checkpoint-{step}.pt" if tensors else None
    if pt_name:
        _atomic_write(run_dir / pt_name, lambda p: torch.save(tensors, p))
    doc = {"format": 1, "step": step, "tensors": pt_name, "state": doc}
    _atomic_write(run_dir / JSON_NAME, lambda p: p.write_text(json.dumps(doc)))
    for old in run_dir.glob("checkpoint-*.pt"):
        if old.name != pt_name:
            old.unlink(missing_ok=True)
    return run_dir / JSON_NAME


def load_checkpoint(run_dir: Path, map_location: str = "cpu") -> dict[str, Any] | None:
    """The saved state, or None when the run dir has no checkpoint; tensors land on
    ``map_location`` whatever device saved them; a damaged checkpoint is a one-line
    error naming the file."""
    import torch

    from hwnas.inputs import read_json

    path = run_dir / JSON_NAME
    if not path.is_file():
        return None
    doc = read_json(path, "checkpoint")
    if not isinstance(doc, dict) or not isinstance(doc.get("state"), dict) or not isinstance(doc.get("step"), int):
        raise HwnasError(f"{path}: damaged checkpoint (expected 'format', 'step' and 'state'); "
                         "restart the search or choose another run directory")
    tensors: dict[str, Any] = {}
    name = doc.get("tensors")
    if name:
        if not isinstance(name, str) or Path(name).name != name or not (run_dir / name).is_file():
            raise HwnasError(f"{path}: names a tensor file {str(name)[:60]!r} that is not in {run_dir}")
        try:
            tensors = torch.load(run_dir / name, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt archive
            raise HwnasError(f"{run_dir / name}: cannot read checkpoint tensors ({type(exc).__name__})") from None
    try:
        return decode(doc["state"], tensors)
    except (KeyError, TypeError, ValueError):
        raise HwnasError(f"{path}: damaged checkpoint (tensor references do not match {name})") from None
