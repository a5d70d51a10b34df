"""Contract suite of the ``zoo`` role: named model variants (hwnas/zoo/__init__.py).

``bench/any_model.py`` exports and measures every registered variant, and
``hwnas profile --torch`` takes its ``spec``, so an entry must be a :class:`ZooEntry`
with a family, a factory importable as ``spec`` whose signature takes the entry's
options, and a build that gives an eval-mode module announcing its ``input_shape``
(N, C, H, W). The build runs on torch's ``meta`` device: the checks need the structure,
not gigabytes of weights (the zoo's own tests run every factory at a small size).
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from hwnas.testing._common import component, expect

ROLE = "zoo"


def check(name: str, tmp_dir: Path | Any) -> None:
    """Entry type, factory and options, and the built module's shape and mode."""
    import torch

    from hwnas.zoo import ZooEntry

    entry = component(ROLE, name)
    expect(isinstance(entry, ZooEntry), ROLE, name, f"must be a hwnas.zoo.ZooEntry, got {type(entry).__name__}")
    expect(isinstance(entry.family, str) and entry.family, ROLE, name, "needs a family name")
    module, _, attr = entry.spec.partition(":")
    factory = getattr(importlib.import_module(module), attr, None)
    expect(callable(factory), ROLE, name, f"spec {entry.spec!r} does not name a callable factory")
    try:
        inspect.signature(factory).bind(**entry.options)
    except TypeError as exc:
        expect(False, ROLE, name, f"options {entry.options} do not fit {entry.spec} ({exc})")
    with torch.device("meta"):
        model = entry.build()
    expect(isinstance(model, torch.nn.Module) and not model.training, ROLE, name, "must build an eval-mode module")
    shape = tuple(getattr(model, "input_shape", ()))
    expect(len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape), ROLE, name,
           f"the module must announce input_shape (N, C, H, W), got {shape}")
    expect(sum(p.numel() for p in model.parameters()) > 0, ROLE, name, "the module has no parameters")
