"""Contract suite of the ``featurizer`` role (see hwnas/cost_models/features.py).

A featurizer is what a saved cost model rebuilds from its config, so besides encoding
one entry per network it must come back identical from ``config()``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.primitives import NetworkSpec
from hwnas.testing._common import ContractError, component, example, expect, jsonable
from hwnas.testing.cost_model import data

ROLE = "featurizer"


def count(out: Any) -> int:
    """Networks encoded in a transform result: array rows, tuple members' rows, or graphs."""
    if isinstance(out, np.ndarray):
        return int(out.shape[0])
    if isinstance(out, tuple) and out:
        counts = {count(o) for o in out}
        return counts.pop() if len(counts) == 1 else -1
    batch = getattr(out, "batch", None)
    if batch is not None:
        return int(batch.max()) + 1 if batch.numel() else 0
    return -1


def same(a: Any, b: Any) -> bool:
    """Equal transform results (arrays, tuples of them, or torch_geometric batches)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    keys = ("x", "edge_index", "batch")
    if all(hasattr(a, k) for k in keys):
        import torch

        return all(hasattr(b, k) and torch.equal(getattr(a, k), getattr(b, k)) for k in keys)
    return bool(a == b)


def check_refusals(name: str, cls: Any, kw: Mapping[str, Any], table: dict[str, float] | None,
                   nets: Sequence[NetworkSpec]) -> None:
    if cls.needs_table:
        try:
            cls(table=None, **kw)
        except HwnasError:
            pass
        else:
            raise ContractError(f"{ROLE} {name!r}: needs_table is set but it builds without a table")
    try:
        cls(table=table, **kw).transform(nets[:2])
    except HwnasError:
        return
    raise ContractError(f"{ROLE} {name!r}: transform() before fit() must raise a CostModelError")


def check_one(name: str, cls: Any, kw: Mapping[str, Any], table: dict[str, float] | None) -> None:
    """fit/transform/config round trip with (or without) a table."""
    from hwnas.cost_models.features import featurizer_from_config

    tr, _, te, _, _ = data()
    check_refusals(name, cls, kw, table, tr)
    f = cls(table=table, **kw)
    expect(f.fit(tr) is f, ROLE, name, "fit() must return self")
    out = f.transform(te)
    expect(count(out) == len(te), ROLE, name,
           f"transform() of {len(te)} networks must give one entry per network, got {count(out)}")
    expect(same(out, f.transform(te)), ROLE, name, "transform() must give the same result every time")
    cfg = f.config()
    expect(isinstance(cfg, dict) and jsonable(cfg), ROLE, name, f"config() must be a JSON-able dict, got {cfg!r}")
    expect(cfg.get("type") == name, ROLE, name, f"config()['type'] must be the registry name, got {cfg.get('type')!r}")
    try:
        rebuilt = featurizer_from_config(cfg, table)
    except HwnasError as exc:
        raise ContractError(f"{ROLE} {name!r}: featurizer_from_config(config()) fails: {exc}") from None
    expect(type(rebuilt) is type(f) and same(rebuilt.transform(te), out), ROLE, name,
           "a featurizer rebuilt from config() must transform identically")


def check(name: str, tmp_dir: Path) -> None:
    """With the synthetic table, and without it for featurizers that do not need one."""
    cls = component(ROLE, name)
    kw = example(ROLE, name, cls, tmp_dir)
    expect(isinstance(kw, dict), ROLE, name, f"example() must return a dict of keyword arguments, got {kw!r}")
    table = data()[4]
    check_one(name, cls, kw, table)
    if not cls.needs_table:
        check_one(name, cls, kw, None)
