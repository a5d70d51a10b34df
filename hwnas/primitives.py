"""The shared records: :class:`Primitive` (one block with its shapes) and
:class:`NetworkSpec` (a whole network as a graph of primitives).

They are the only types that cross between the search space, the profilers, the cost
store and the cost models, so they are frozen, validated at construction, and have
stable identities: a primitive's human-readable ``key`` and a network's content
``hash`` are the primary keys in the store and must not change between runs or
Python versions.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from hwnas.errors import ValidationError

#: Known activation names (``none`` for blocks without one).
ACTIVATIONS: tuple[str, ...] = ("none", "relu", "relu6", "hswish", "swish", "sigmoid")


ExtraValue = Any  # str | int | float | bool
Extras = tuple[tuple[str, ExtraValue], ...]


#: Largest channel count, spatial size, kernel or stride a primitive may have: far above
#: any real network, low enough that a typo cannot allocate terabytes.
MAX_DIM = 1 << 20


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"Primitive.{name}: expected an integer, got {str(value)[:40]}")
    if not minimum <= value <= MAX_DIM:
        raise ValidationError(f"Primitive.{name}: must be in {minimum}..{MAX_DIM}, got {str(value)[:40]}")


def _fmt(v: ExtraValue) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


@dataclass(frozen=True)
class Primitive:
    """One block with its shapes, e.g. an inverted-residual block at 56x56.

    ``h`` and ``w`` are the *input* spatial size; the output size follows from the
    stride. ``extras`` holds op-specific fields (e.g. ``("mode", "avg")`` for pools) as
    a sorted tuple of pairs; a mapping is accepted and normalised.
    """

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    kernel: int = 1
    stride: int = 1
    expansion: float = 1
    groups: int = 1
    act: str = "none"
    se: bool = False
    extras: Extras = field(default=())

    def __post_init__(self) -> None:
        # Hyphens join the ops of a fused kernel (``conv-bn-relu``), see nn/kernels.
        if not isinstance(self.op, str) or not self.op or not self.op.replace("_", "a").replace("-", "a").isalnum() \
                or self.op != self.op.lower() or self.op[0] == "-":
            raise ValidationError(f"Primitive.op: expected a lower-case identifier, got {self.op!r}")
        _check_int("c_in", self.c_in, 1)
        _check_int("c_out", self.c_out, 1)
        _check_int("h", self.h, 1)
        _check_int("w", self.w, 1)
        _check_int("kernel", self.kernel, 1)
        _check_int("stride", self.stride, 1)
        _check_int("groups", self.groups, 1)
        if isinstance(self.expansion, bool) or not isinstance(self.expansion, (int, float)) \
                or not 0 < self.expansion <= 1024:
            raise ValidationError(f"Primitive.expansion: expected a number in (0, 1024], got {str(self.expansion)[:40]}")
        if float(self.expansion).is_integer():
            object.__setattr__(self, "expansion", int(self.expansion))
        if self.act not in ACTIVATIONS:
            raise ValidationError(f"Primitive.act: expected one of {', '.join(ACTIVATIONS)}, got {self.act!r}")
        if not isinstance(self.se, bool):
            raise ValidationError(f"Primitive.se: expected true or false, got {self.se!r}")
        if self.c_in % self.groups or self.c_out % self.groups:
            raise ValidationError(
                f"Primitive.groups: {self.groups} must divide c_in={self.c_in} and c_out={self.c_out}"
            )
        extras = self.extras
        if isinstance(extras, Mapping):
            extras = tuple(extras.items())
        try:
            norm = tuple(sorted((str(k), v) for k, v in extras))
        except (TypeError, ValueError):
            raise ValidationError(f"Primitive.extras: expected (name, value) pairs, got {self.extras!r}") from None
        for k, v in norm:
            if not isinstance(v, (str, int, float, bool)):
                raise ValidationError(f"Primitive.extras[{k}]: expected a scalar, got {v!r}")
            if " " in k or "=" in k:
                raise ValidationError(f"Primitive.extras: bad name {k!r}")
        if len({k for k, _ in norm}) != len(norm):
            raise ValidationError(f"Primitive.extras: duplicate names in {self.extras!r}")
        object.__setattr__(self, "extras", norm)

    # -- identity -------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Canonical, human-readable, unique key, e.g. ``mbconv c24>32 56x56 k5 s2 e6 relu6``.

        Default-valued fields are omitted (``g1``, ``se`` off, ``act none``) so keys
        stay short; every field that differs from its default appears, in a fixed
        order, so two different primitives never share a key.
        """
        parts = [self.op, f"c{self.c_in}>{self.c_out}", f"{self.h}x{self.w}", f"k{self.kernel}", f"s{self.stride}"]
        if self.expansion != 1:
            parts.append(f"e{_fmt(self.expansion)}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.act != "none":
            parts.append(self.act)
        if self.se:
            parts.append("se")
        parts.extend(f"{k}={_fmt(v)}" for k, v in self.extras)
        return " ".join(parts)

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output spatial size ((h + s - 1) // s, 'same' padding); global ops give 1x1."""
        if self.op == "fc" or self.extra("mode") == "global":
            return (1, 1)
        return ((self.h + self.stride - 1) // self.stride, (self.w + self.stride - 1) // self.stride)

    def extra(self, name: str, default: ExtraValue = None) -> ExtraValue:
        for k, v in self.extras:
            if k == name:
                return v
        return default

    # -- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "op": self.op, "c_in": self.c_in, "c_out": self.c_out, "h": self.h, "w": self.w,
            "kernel": self.kernel, "stride": self.stride, "expansion": self.expansion,
            "groups": self.groups, "act": self.act, "se": self.se,
        }
        if self.extras:
            d["extras"] = {k: v for k, v in self.extras}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Primitive":
        if not isinstance(data, Mapping):
            raise ValidationError(f"Primitive: expected a mapping, got {type(data).__name__}")
        allowed = {"op", "c_in", "c_out", "h", "w", "kernel", "stride", "expansion", "groups", "act", "se", "extras"}
        unknown = set(data) - allowed
        if unknown:
            raise ValidationError(f"Primitive: unknown field(s) {', '.join(sorted(unknown))}")
        missing = {"op", "c_in", "c_out", "h", "w"} - set(data)
        if missing:
            raise ValidationError(f"Primitive: missing field(s) {', '.join(sorted(missing))}")
        kw = dict(data)
        extras = kw.get("extras") or {}
        if not isinstance(extras, Mapping):
            raise ValidationError(f"Primitive.extras: expected a mapping of name: scalar value, got "
                                  f"{type(extras).__name__} {str(extras)[:40]}")
        kw["extras"] = tuple(extras.items())
        return cls(**kw)


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: input shape, nodes (primitives) and edges (node index pairs).

    Node 0 reads the network input; a node with several predecessors sums their
    outputs (shapes must agree), except a ``concat`` node, which concatenates them along
    the channels in node order; the last node is the output. ``meta`` holds
    non-identifying information (space name, the architecture that produced it) and
    does not enter the hash.
    """

    input_shape: tuple[int, int, int]
    nodes: tuple[Primitive, ...]
    edges: tuple[tuple[int, int], ...] = ()
    meta: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape)
        if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
            raise ValidationError(f"NetworkSpec.input_shape: expected (C, H, W) positive ints, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        nodes = tuple(self.nodes)
        if not nodes:
            raise ValidationError("NetworkSpec.nodes: a network needs at least one node")
        for i, n in enumerate(nodes):
            if not isinstance(n, Primitive):
                raise ValidationError(f"NetworkSpec.nodes[{i}]: expected a Primitive, got {type(n).__name__}")
        object.__setattr__(self, "nodes", nodes)
        edges = tuple(sorted({_edge(e) for e in self.edges}))
        for a, b in edges:
            if not (0 <= a < len(nodes) and 0 <= b < len(nodes)):
                raise ValidationError(f"NetworkSpec.edges: ({a}, {b}) refers to a missing node (have {len(nodes)})")
            if a >= b:
                raise ValidationError(f"NetworkSpec.edges: ({a}, {b}) must go forward (a < b) to keep the graph acyclic")
        object.__setattr__(self, "edges", edges)
        for j in range(1, len(nodes)):
            if not any(b == j for _, b in edges):
                raise ValidationError(f"NetworkSpec.edges: node {j} ({nodes[j].key}) has no input edge")
        meta = self.meta
        if isinstance(meta, Mapping):
            meta = tuple(sorted(meta.items()))
        object.__setattr__(self, "meta", tuple(meta))

    @classmethod
    def chain(cls, input_shape: Sequence[int], nodes: Iterable[Primitive], **meta: Any) -> "NetworkSpec":
        nodes = tuple(nodes)
        return cls(tuple(input_shape), nodes, tuple((i, i + 1) for i in range(len(nodes) - 1)), tuple(sorted(meta.items())))

    # -- identity -------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "nodes": [n.key for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    @property
    def hash(self) -> str:
        """Stable content hash (SHA-256 of the canonical JSON of keys and edges), 16 hex."""
        blob = json.dumps(self._identity(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def is_chain(self) -> bool:
        return self.edges == tuple((i, i + 1) for i in range(len(self.nodes) - 1))

    def predecessors(self, j: int) -> list[int]:
        return [a for a, b in self.edges if b == j]

    def get_meta(self, name: str, default: Any = None) -> Any:
        return dict(self.meta).get(name, default)

    def __len__(self) -> int:
        return len(self.nodes)

    # -- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "input_shape": list(self.input_shape),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }
        if self.meta:
            d["meta"] = {k: v for k, v in self.meta}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetworkSpec":
        if not isinstance(data, Mapping):
            raise ValidationError(f"NetworkSpec: expected a mapping, got {type(data).__name__}")
        for key, kind in (("nodes", list), ("input_shape", list)):
            if key not in data:
                raise ValidationError(f"NetworkSpec: missing field {key!r}")
            if not isinstance(data[key], kind):
                raise ValidationError(f"NetworkSpec.{key}: expected a list, got {type(data[key]).__name__}")
        edges_in = data.get("edges", ())
        if not isinstance(edges_in, (list, tuple)):
            raise ValidationError(f"NetworkSpec.edges: expected a list of pairs, got {type(edges_in).__name__}")
        meta_in = data.get("meta") or {}
        if not isinstance(meta_in, Mapping):
            raise ValidationError(f"NetworkSpec.meta: expected a mapping, got {type(meta_in).__name__}")
        nodes = tuple(Primitive.from_dict(n) for n in data["nodes"])
        return cls(tuple(data["input_shape"]), nodes, tuple(edges_in), tuple(sorted(meta_in.items())))

    @classmethod
    def from_json(cls, text: str) -> "NetworkSpec":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"NetworkSpec: not valid JSON ({exc})") from None


def _edge(e: Any) -> tuple[int, int]:
    """An edge as a pair of node indices; anything else is a one-line error."""
    if isinstance(e, (str, bytes)) or not isinstance(e, Sequence) or len(e) != 2:
        raise ValidationError(f"NetworkSpec.edges: expected pairs [from, to], got {str(e)[:40]}")
    a, b = e
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (a, b)):
        raise ValidationError(f"NetworkSpec.edges: node indices must be integers, got {str(e)[:40]}")
    return int(a), int(b)


def unique_primitives(networks: Iterable[NetworkSpec]) -> list[Primitive]:
    """All distinct primitives of some networks, in first-seen order."""
    seen: dict[str, Primitive] = {}
    for net in networks:
        for n in net.nodes:
            seen.setdefault(n.key, n)
    return list(seen.values())
