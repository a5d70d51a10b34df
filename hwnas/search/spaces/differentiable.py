"""What a space offers to differentiable search: architecture-parameter groups, the
derivation of a discrete architecture from them, and per-choice hardware costs.

Why groups instead of one vector per decision: a differentiable method parameterises a
space its own way. DARTS keeps one distribution per *edge* of a cell (14 rows x 8 ops
for 4 nodes) and derives two inputs per node from it, not one categorical per decision;
a block-wise space keeps one row per layer. A :class:`ParamGroup` is a matrix of logits
(rows x choices, optionally masked where rows have fewer choices), and the space alone
knows how to :meth:`~hwnas.search.spaces.base.SearchSpace.derive` an architecture from
the group weights. Every space gets a default parameterisation (one group per decision,
derive = argmax), so differentiable controllers run on any space.

A :class:`CostTerm` says "when choice ``c`` of row ``r`` of group ``g`` has weight w,
the network holds ``w * scale`` of this primitive", so the expected latency of a weight
distribution is ``sum(w * scale * cost(primitive))`` plus the fixed terms; the
differentiable hardware objective needs nothing else from a space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import ValidationError
from hwnas.primitives import Primitive

#: Group weights by group name: arrays of shape (rows, choices).
Weights = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ParamGroup:
    """A matrix of architecture logits: ``rows`` distributions over ``choices``.

    ``mask[r][c]`` is False where row ``r`` lacks choice ``c`` (ragged rows).
    ``kind`` is ``choice`` (a categorical choice per row, which Gumbel controllers
    sample) or ``edge`` (weights of a node's inputs, PC-DARTS' edge normalisation,
    always a plain softmax).
    """

    name: str
    rows: int
    choices: tuple[str, ...]
    mask: tuple[tuple[bool, ...], ...] | None = None
    kind: str = "choice"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, len(self.choices))

    def mask_array(self) -> np.ndarray:
        if self.mask is None:
            return np.ones(self.shape, dtype=bool)
        return np.asarray(self.mask, dtype=bool).reshape(self.shape)


@dataclass(frozen=True)
class CostTerm:
    """``scale`` x ``primitive`` in the network, weighted by choice (group, row, choice);
    ``group`` None: a fixed part of every network."""

    primitive: Primitive
    group: str | None = None
    row: int = 0
    choice: int = 0
    scale: float = 1.0


@dataclass(frozen=True)
class MixedLayer:
    """One layer of a chain space under differentiable search: row ``row`` of group
    ``group`` chooses among ``candidates`` (None = an identity that costs nothing)."""

    group: str
    row: int
    candidates: tuple[Primitive | None, ...]


def masked_argmax(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-row argmax over the allowed choices."""
    return np.where(mask, w, -np.inf).argmax(axis=-1)


def check_weights(groups: Sequence[ParamGroup], weights: Weights, where: str = "alphas") -> dict[str, np.ndarray]:
    """Arrays of the right shape for every group (one-line errors otherwise)."""
    out = {}
    for g in groups:
        if g.name not in weights:
            raise ValidationError(f"{where}: missing group {g.name!r} (groups: {', '.join(x.name for x in groups)})")
        try:
            arr = np.asarray(weights[g.name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(f"{where}.{g.name}: expected a {g.rows} x {len(g.choices)} matrix of numbers") \
                from None
        if arr.shape != g.shape or not np.isfinite(arr).all():
            raise ValidationError(f"{where}.{g.name}: expected a finite {g.rows} x {len(g.choices)} matrix, "
                                  f"got shape {arr.shape}")
        out[g.name] = arr
    return out


def weights_to_jsonable(groups: Sequence[ParamGroup], weights: Weights) -> dict[str, Any]:
    """``{group: {choices: [...], values: [[...], ...]}}`` for YAML / JSON files."""
    return {g.name: {"choices": list(g.choices),
                     "values": [[round(float(v), 6) for v in row] for row in np.asarray(weights[g.name])]}
            for g in groups}


def weights_from_jsonable(groups: Sequence[ParamGroup], obj: Any, where: str = "alphas") -> dict[str, np.ndarray]:
    """Inverse of :func:`weights_to_jsonable` (also accepts bare matrices per group)."""
    if not isinstance(obj, Mapping):
        raise ValidationError(f"{where}: expected a mapping of group -> matrix, got {type(obj).__name__}")
    raw = {}
    for name, v in obj.items():
        if isinstance(v, Mapping):
            g = next((g for g in groups if g.name == name), None)
            if g is not None and list(v.get("choices", g.choices)) != list(g.choices):
                raise ValidationError(f"{where}.{name}.choices: expected {list(g.choices)}, got {v.get('choices')}")
            v = v.get("values")
        raw[name] = v
    return check_weights(groups, raw, where)


def one_hot(groups: Sequence[ParamGroup], picks: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
    """One-hot weights: row ``r`` of group ``g`` chooses ``picks[g][r]``."""
    out = {}
    for g in groups:
        w = np.zeros(g.shape)
        w[np.arange(g.rows), np.asarray(picks[g.name], dtype=int)] = 1.0
        out[g.name] = w
    return out


def chain_cost_terms(fixed: Sequence[Primitive], layers: Sequence[MixedLayer]) -> list[CostTerm]:
    """Cost terms of a chain: fixed primitives, and each mixed layer's candidates."""
    out = [CostTerm(p) for p in fixed]
    for layer in layers:
        out += [CostTerm(p, layer.group, layer.row, c) for c, p in enumerate(layer.candidates) if p is not None]
    return out
