"""Features of a NetworkSpec for cost models, with or without a primitive cost table.

Why a separate layer: every model (sum, linear, MLP, LSTM, GNN) sees the same per-node
rows, so they agree on what a primitive "is", and the expensive part (turning a
Primitive into numbers and looking it up in the table) is done once per distinct
primitive and cached. Encoding a batch of networks is then a dict lookup per node plus
NumPy gathers, which is what keeps batch prediction at tens of thousands per second.

A primitive missing from the table raises :class:`CostModelError` naming its key: a
silent zero would make a network look free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from hwnas.errors import CostModelError
from hwnas.primitives import ACTIVATIONS, NetworkSpec, Primitive
from hwnas.registry import register

#: Numeric columns of a node row, after the op and activation one-hots.
NUMERIC: tuple[str, ...] = ("log2_c_in", "log2_c_out", "log2_h", "log2_w", "kernel", "stride", "expansion",
                            "log2_groups", "se", "global")
_LOG_FLOOR = 1e-9


def table_value(table: Mapping[str, float], prim: Primitive) -> float:
    """The table's value for ``prim``; a missing or non-positive entry is an error."""
    key = prim.key
    try:
        v = float(table[key])
    except KeyError:
        raise CostModelError(f"primitive {key!r} is not in the cost table ({len(table)} entries); "
                             "profile it first or fit a table-free model") from None
    if not math.isfinite(v) or v < 0:
        raise CostModelError(f"cost table entry {key!r} is not a finite value >= 0: {v!r}")
    return v


def ops_of(networks: Iterable[NetworkSpec]) -> list[str]:
    """Sorted op names seen in some networks (the one-hot vocabulary)."""
    return sorted({n.op for net in networks for n in net.nodes})


class NodeFeatures:
    """Per-primitive feature rows and table values, cached by primitive.

    ``ops`` fixes the op one-hot (an op not in it falls into a trailing "other"
    column); ``table`` adds a log-latency column and the per-node value used by the
    sum. Rows are appended as new primitives appear, so prediction on networks never
    seen in training works without refitting.
    """

    def __init__(self, ops: Sequence[str], table: Mapping[str, float] | None = None) -> None:
        self.ops = tuple(ops)
        self.table = dict(table) if table is not None else None
        self._op_index = {op: i for i, op in enumerate(self.ops)}
        self._index: dict[Primitive, int] = {}
        self._rows: list[np.ndarray] = []
        self._values: list[float] = []
        self._matrix: np.ndarray | None = None
        self._vector: np.ndarray | None = None

    @property
    def has_table(self) -> bool:
        return self.table is not None

    @property
    def dim(self) -> int:
        return len(self.ops) + 1 + len(ACTIVATIONS) + len(NUMERIC) + (1 if self.has_table else 0)

    @property
    def columns(self) -> list[str]:
        cols = [f"op={o}" for o in self.ops] + ["op=other"] + [f"act={a}" for a in ACTIVATIONS] + list(NUMERIC)
        return cols + (["log_table"] if self.has_table else [])

    def _row(self, p: Primitive, value: float) -> np.ndarray:
        r = np.zeros(self.dim, dtype=np.float32)
        r[self._op_index.get(p.op, len(self.ops))] = 1.0
        off = len(self.ops) + 1
        r[off + ACTIVATIONS.index(p.act)] = 1.0
        off += len(ACTIVATIONS)
        r[off:off + len(NUMERIC)] = (math.log2(p.c_in), math.log2(p.c_out), math.log2(p.h), math.log2(p.w),
                                     p.kernel, p.stride, float(p.expansion), math.log2(p.groups), float(p.se),
                                     float(p.op == "fc" or p.extra("mode") == "global"))
        if self.has_table:
            r[-1] = math.log(max(value, _LOG_FLOOR))
        return r

    def index(self, p: Primitive) -> int:
        i = self._index.get(p)
        if i is None:
            value = table_value(self.table, p) if self.table is not None else 0.0
            i = len(self._rows)
            self._rows.append(self._row(p, value))
            self._values.append(value)
            self._index[p] = i
            self._matrix = self._vector = None
        return i

    @property
    def matrix(self) -> np.ndarray:
        """(n_primitives, dim) float32 rows, in index order."""
        if self._matrix is None:
            self._matrix = np.stack(self._rows) if self._rows else np.zeros((0, self.dim), np.float32)
        return self._matrix

    @property
    def values(self) -> np.ndarray:
        """(n_primitives,) table values (zeros without a table)."""
        if self._vector is None:
            self._vector = np.asarray(self._values, dtype=np.float64)
        return self._vector


@dataclass
class Encoded:
    """A batch of networks as node-row ids (concatenated) and optional edges."""

    ids: np.ndarray              # (total_nodes,) int64 rows of NodeFeatures
    offsets: np.ndarray          # (n + 1,) start of each network in ids
    edges: list[np.ndarray] | None = None  # per network (E, 2), local node indices

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, idx: Sequence[int] | np.ndarray) -> "Encoded":
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.lengths[idx]
        parts = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        edges = [self.edges[i] for i in idx] if self.edges is not None else None
        return Encoded(ids, offsets, edges)


def encode(nf: NodeFeatures, networks: Sequence[NetworkSpec], *, edges: bool = False) -> Encoded:
    """Node ids of every network (and its edges), through the per-primitive cache."""
    index = nf.index
    lens = np.fromiter((len(net.nodes) for net in networks), dtype=np.int64, count=len(networks))
    ids = np.fromiter((index(p) for net in networks for p in net.nodes), dtype=np.int64, count=int(lens.sum()))
    offsets = np.zeros(len(networks) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    e = [np.asarray(net.edges, dtype=np.int64).reshape(-1, 2) for net in networks] if edges else None
    return Encoded(ids, offsets, e)


# -- featurizers ---------------------------------------------------------------------------
class Featurizer:
    """Base: fit fixes the vocabulary (and padding length); transform encodes networks.

    ``table`` is a dict primitive key -> value for one device and backend, or None for
    the table-free variants used on whole-network datasets.

    Contract (checked by the suite in ``testing/featurizer.py``): built as ``cls(table=...,
    **example)``, refusing ``table=None`` when ``needs_table``; ``fit`` returns self;
    ``transform`` before ``fit`` raises a CostModelError, after it encodes any networks
    (also unseen ones) with one entry per network (array rows, or graphs of a batch),
    the same every time; ``config()`` is JSON-able and holds ``type`` (the registry
    name) and the keyword arguments that rebuild it, so :func:`featurizer_from_config`
    gives a featurizer that transforms identically.
    """

    needs_table = False

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Keyword arguments besides ``table`` for the contract suite (default: none)."""
        return {}

    def __init__(self, table: Mapping[str, float] | None = None, ops: Sequence[str] | None = None) -> None:
        if self.needs_table and table is None:
            raise CostModelError(f"featurizer {type(self).__name__} needs a cost table")
        self.table = dict(table) if table is not None else None
        self.ops = tuple(ops) if ops is not None else None
        self.nodes_: NodeFeatures | None = NodeFeatures(self.ops, self.table) if self.ops is not None else None

    def fit(self, networks: Sequence[NetworkSpec]) -> "Featurizer":
        if self.ops is None:
            self.ops = tuple(ops_of(networks))
        self.nodes_ = NodeFeatures(self.ops, self.table)
        return self

    def _nf(self) -> NodeFeatures:
        if self.nodes_ is None:
            raise CostModelError(f"{type(self).__name__} is not fitted")
        return self.nodes_

    def config(self) -> dict[str, Any]:
        return {"type": getattr(self, "registry_name", type(self).__name__), "ops": list(self.ops or ())}

    def transform(self, networks: Sequence[NetworkSpec]) -> Any:
        raise NotImplementedError


@register("featurizer", "sum_count")
class SumCountFeaturizer(Featurizer):
    """(sum of block table values, number of blocks) per network."""

    needs_table = True

    def transform(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        nf = self._nf()
        enc = encode(nf, networks)
        vals = nf.values[enc.ids]
        sums = np.add.reduceat(vals, enc.offsets[:-1]) if len(vals) else np.zeros(enc.n)
        return np.column_stack([sums, enc.lengths.astype(np.float64)])


@register("featurizer", "position")
class PositionFeaturizer(Featurizer):
    """Per-position block table values, zero-padded to ``max_len`` (from training)."""

    needs_table = True

    def __init__(self, table: Mapping[str, float] | None = None, ops: Sequence[str] | None = None,
                 max_len: int | None = None) -> None:
        super().__init__(table, ops)
        self.max_len = max_len

    def fit(self, networks: Sequence[NetworkSpec]) -> "PositionFeaturizer":
        super().fit(networks)
        if self.max_len is None:
            self.max_len = max(len(n) for n in networks)
        return self

    def config(self) -> dict[str, Any]:
        return {**super().config(), "max_len": self.max_len}

    def transform(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        nf = self._nf()
        enc = encode(nf, networks)
        return pad(enc, nf.values, int(self.max_len or 0))


@register("featurizer", "sequence")
class SequenceFeaturizer(Featurizer):
    """(N, L, dim) per-block rows in node order, zero-padded, plus lengths; the log
    table latency is the last column when a table is given."""

    def transform(self, networks: Sequence[NetworkSpec]) -> tuple[np.ndarray, np.ndarray]:
        nf = self._nf()
        enc = encode(nf, networks)
        return pad(enc, nf.matrix, int(enc.lengths.max()) if enc.n else 0), enc.lengths


@register("featurizer", "graph")
class GraphFeaturizer(Featurizer):
    """torch_geometric ``Data`` per network: node rows as in ``sequence``, edges from
    the NetworkSpec (forward, i -> j)."""

    def to_data(self, net: NetworkSpec) -> Any:
        return self.transform([net])

    def transform(self, networks: Sequence[NetworkSpec]) -> Any:
        """One batched ``Data`` (x, edge_index, batch) for all networks."""
        nf = self._nf()
        return graph_batch(encode(nf, networks, edges=True), nf.matrix)


def pad(enc: Encoded, rows: np.ndarray, length: int, *, truncate: bool = False) -> np.ndarray:
    """Gather ``rows[ids]`` into a zero-padded (N, length[, dim]) array.

    A network longer than ``length`` is an error, or with ``truncate`` loses its blocks
    beyond ``length`` (callers that also see whole-network aggregates use that).
    """
    lens = enc.lengths
    if enc.n and lens.max() > length and not truncate:
        raise CostModelError(f"a network has {int(lens.max())} blocks but the model was fit on at most {length}; "
                             "refit with a larger max_len")
    out = np.zeros((enc.n, length) + rows.shape[1:], dtype=rows.dtype)
    if len(enc.ids):
        net = np.repeat(np.arange(enc.n), lens)
        pos = np.arange(len(enc.ids)) - np.repeat(enc.offsets[:-1], lens)
        keep = pos < length
        out[net[keep], pos[keep]] = rows[enc.ids[keep]]
    return out


def graph_batch(enc: Encoded, rows: np.ndarray) -> Any:
    """A batched torch_geometric ``Data`` built with NumPy (no per-graph collate)."""
    import torch
    from torch_geometric.data import Data

    assert enc.edges is not None
    lens = enc.lengths
    shift = np.repeat(enc.offsets[:-1], [len(e) for e in enc.edges])
    edge = np.concatenate(enc.edges) if enc.edges else np.zeros((0, 2), np.int64)
    edge = (edge + shift[:, None]).T if len(edge) else np.zeros((2, 0), np.int64)
    return Data(x=torch.from_numpy(rows[enc.ids]), edge_index=torch.from_numpy(np.ascontiguousarray(edge)),
                batch=torch.from_numpy(np.repeat(np.arange(enc.n), lens)), num_nodes=int(lens.sum()))


def featurizer_from_config(cfg: Mapping[str, Any], table: Mapping[str, float] | None) -> Featurizer:
    """Rebuild a fitted featurizer from :meth:`Featurizer.config` and its table: the
    registered class of ``type``, built with the config's other keys (its keyword
    arguments), so plugin featurizers come back too."""
    from hwnas import registry
    from hwnas.errors import HwnasError

    kind = cfg.get("type")
    try:
        cls = registry.get("featurizer", str(kind))
    except HwnasError:
        raise CostModelError(f"unknown featurizer {kind!r} in model file") from None
    kw = {k: v for k, v in cfg.items() if k != "type"}
    try:
        return cls(table=table, **kw)
    except TypeError as exc:
        raise CostModelError(f"featurizer {kind!r}: config does not rebuild it ({exc})") from None
