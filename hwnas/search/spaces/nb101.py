"""NAS-Bench-101 cell space (``nb101``): a DAG of up to 7 vertices and 9 edges.

An architecture is the upper triangle of the adjacency matrix (one 0/1 decision per
vertex pair, in row order) and one of three operations per interior vertex
(conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3). As in the benchmark, a cell is valid
when the input reaches the output and the cell, once pruned of vertices off every
input->output path, has at most ``max_edges`` edges; 423,624 distinct cells remain out
of the 2^21 x 3^5 decision vectors (see :mod:`.nb101_graph` and ``bench/nb101_count.py``).

:meth:`NB101Space.canonical` prunes and renumbers a cell into its exact canonical form
(isomorphic cells, and only they, share it), so controllers, caches and the network
builder treat equal networks as one; :meth:`NB101Space.arch_hash` is the benchmark's
own graph hash, the key of a NAS-Bench-101 table (``evaluator.table`` with
``key_form: hash``). Sampling is uniform over valid decision vectors (rejection, as the
benchmark's random search), and mutation and crossover retry until the child is valid;
all three return canonical forms, so a population holds each network once and reads
as pruned cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError, ValidationError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, MAX_RESOLUTION, Arch, Decision, SearchSpace, ascii_text
from hwnas.search.spaces.nb101_graph import INPUT_LABEL, OUTPUT_LABEL, canonical_order, fingerprint, prune
from hwnas.search.spaces.nb101_net import OPS, add_cell, cell_primitives

#: Tries before mutation / crossover give up on finding a valid, different child.
TRIES = 200


@register("search_space", "nb101")
class NB101Space(SearchSpace):
    """NAS-Bench-101 cells (7 vertices, 3 ops, <= 9 edges) in the stacked-cell CNN."""

    @dataclass(frozen=True)
    class Options:
        vertices: int = opt(7, min=3, max=7, help="vertices of a cell, input and output included")
        max_edges: int = opt(9, min=2, max=21, help="most edges of a (pruned) cell (2 or more: one edge allows one network)")
        stem_channels: int = opt(128, min=5, max=MAX_CHANNELS, help="channels of the stem and the first stack")
        stacks: int = opt(3, min=1, max=6, help="stacks of cells (a 2x2 max pool and doubled channels between)")
        cells_per_stack: int = opt(3, min=1, max=16, help="cells per stack")
        resolution: int = opt(32, min=4, max=MAX_RESOLUTION, help="input height and width")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels")
        num_classes: int = opt(10, min=2, max=MAX_CLASSES, help="classifier outputs")

        def check(self) -> None:
            if self.stem_channels < self.vertices - 2:
                raise ConfigError(f"stem_channels: must be >= vertices - 2 = {self.vertices - 2} (every vertex "
                                  f"feeding the output needs a channel), got {self.stem_channels}")

    def __init__(self, options: "NB101Space.Options | None" = None, **kw: object) -> None:
        self.options = options or NB101Space.Options(**kw)  # type: ignore[arg-type]
        self.options.check()
        v = self.options.vertices
        self.pairs: list[tuple[int, int]] = [(i, j) for i in range(v) for j in range(i + 1, v)]
        super().__init__()

    def build_decisions(self) -> Sequence[Decision]:
        v = self.options.vertices
        return [Decision(f"edge{i}~{j}", (0, 1)) for i, j in self.pairs] + \
            [Decision(f"op{t}", OPS) for t in range(1, v - 1)]

    # -- arch <-> labelled matrix ----------------------------------------------------------
    def cell(self, arch: Sequence[int]) -> tuple[np.ndarray, list[int]]:
        """The (unpruned) adjacency matrix and interior op indices of ``arch``."""
        v = self.options.vertices
        m = np.zeros((v, v), dtype=np.int8)
        for (i, j), bit in zip(self.pairs, arch):
            m[i, j] = bit
        return m, [int(a) for a in arch[len(self.pairs):]]

    def from_cell(self, matrix: Any, ops: Sequence[int], where: str = "nb101") -> Arch:
        """The arch of a matrix of 2..``vertices`` vertices (a smaller one is embedded: its
        output becomes the last vertex, the vertices in between stay unconnected)."""
        v = self.options.vertices
        m = np.asarray(matrix)
        k = m.shape[0] if m.ndim == 2 else 0
        if m.ndim != 2 or m.shape != (k, k) or not 2 <= k <= v or not np.isin(m, (0, 1)).all():
            raise ValidationError(f"{where}: expected a square 0/1 matrix of 2..{v} vertices, got shape {m.shape}")
        if np.tril(m).any():
            raise ValidationError(f"{where}: the matrix must be upper-triangular (edges go to later vertices)")
        if len(ops) != k - 2:
            raise ValidationError(f"{where}: a {k}-vertex cell needs {k - 2} interior ops, got {len(ops)}")
        pos = list(range(k - 1)) + [v - 1]
        full = np.zeros((v, v), dtype=np.int8)
        full[np.ix_(pos, pos)] = m
        labels = list(ops) + [0] * (v - k)
        return self.validate([int(full[i, j]) for i, j in self.pairs] + labels)

    def pruned(self, arch: Sequence[int]) -> tuple[np.ndarray, list[int]]:
        """The pruned matrix and labels (-1 input, op indices, -2 output); a cell without an
        input->output path, or with too many edges, is a one-line ValidationError."""
        m, ops = self.cell(arch)
        got = prune(m, [INPUT_LABEL, *ops, OUTPUT_LABEL])
        if got is None:
            raise ValidationError("nb101: no path from the input to the output vertex")
        if int(got[0].sum()) > self.options.max_edges:
            raise ValidationError(f"nb101: the pruned cell has {int(got[0].sum())} edges, "
                                  f"at most {self.options.max_edges} allowed")
        return got

    def validate(self, arch: Sequence[int]) -> Arch:
        arch = super().validate(arch)
        self.pruned(arch)
        return arch

    def arch_hash(self, arch: Sequence[int]) -> str:
        """NAS-Bench-101's module hash of the (pruned) cell: equal for isomorphic cells."""
        return fingerprint(*self.pruned(self.validate(arch)))

    def canonical(self, arch: Arch) -> Arch:
        """Pruned, renumbered to the exact canonical form, embedded in ``vertices``."""
        m, labels = self.pruned(arch)
        order = canonical_order(m, labels)
        return self.from_cell(m[np.ix_(order, order)], [labels[i] for i in order[1:-1]])

    # -- sampling and variation ------------------------------------------------------------
    def _valid(self, arch: Sequence[int]) -> bool:
        try:
            self.validate(arch)
        except ValidationError:
            return False
        return True

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly drawn valid decision vector, in canonical form."""
        while True:
            arch = super().sample(rng)
            if self._valid(arch):
                return self.canonical(arch)

    def mutate(self, arch: Arch, rng: np.random.Generator, n: int = 1) -> Arch:
        """``n`` flipped edges or changed ops, retried until the child is a valid cell of
        another network (canonical form) than the parent. Every 10 failed tries one more
        decision changes: from the bare input->output cell no single flip changes the
        network (a new vertex needs an edge in and an edge out)."""
        base = self.canonical(arch)
        for attempt in range(TRIES):
            child = super().mutate(arch, rng, n + attempt // 10)
            if self._valid(child) and self.canonical(child) != base:
                return self.canonical(child)
        while True:  # pragma: no cover - max_edges >= 2 gives every space two networks or more
            child = self.sample(rng)
            if child != base:
                return child

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        for _ in range(TRIES):
            child = super().crossover(a, b, rng)
            if self._valid(child):
                return self.canonical(child)
        return self.canonical(a)

    # -- strings -----------------------------------------------------------------------------
    def to_str(self, arch: Arch) -> str:
        """``ROWS|OPS``: the matrix rows as 0/1 strings joined by ``/``, then the interior
        ops by name, e.g. ``011/001/000|conv3x3-bn-relu`` for a 3-vertex cell. In a
        canonical cell of fewer vertices than ``vertices``, the unused vertices are the
        empty rows before the output's, with the first op."""
        m, ops = self.cell(self.validate(arch))
        return "/".join("".join(str(int(b)) for b in row) for row in m) + "|" + ",".join(OPS[o] for o in ops)

    def from_str(self, text: str) -> Arch:
        text = ascii_text("nb101", text).strip()
        rows, sep, ops = text.partition("|")
        try:
            if not sep or any(set(r) - {"0", "1"} for r in rows.split("/")):
                raise ValueError
            m = [[int(c) for c in r] for r in rows.split("/")]
            names = [o.strip() for o in ops.split(",")] if ops.strip() else []
            idx = [OPS.index(o) for o in names]
        except ValueError:
            raise ValidationError(f"nb101: cannot parse {text[:80]!r}; expected e.g. '011/001/000|conv3x3-bn-relu' "
                                  f"(matrix rows, then ops of {', '.join(OPS)})") from None
        if len({len(r) for r in m}) != 1:
            raise ValidationError(f"nb101: matrix rows of {text[:80]!r} differ in length")
        return self.from_cell(m, idx)

    def to_jsonable(self, arch: Arch) -> Any:
        m, ops = self.cell(self.validate(arch))
        return {"matrix": m.tolist(), "ops": [OPS[o] for o in ops]}

    def from_jsonable(self, obj: Any) -> Arch:
        if isinstance(obj, (list, tuple)):
            return self.validate(obj)
        if isinstance(obj, str):
            return self.from_str(obj)
        if not isinstance(obj, dict) or set(obj) != {"matrix", "ops"}:
            raise ValidationError("nb101: expected {matrix: [[0/1...]...], ops: [...]} or a list of indices")
        ops = obj["ops"]
        if not isinstance(ops, list) or any(o not in OPS for o in ops):
            raise ValidationError(f"nb101: ops must be a list of {', '.join(OPS)}, got {str(ops)[:80]}")
        m = obj["matrix"]
        if not isinstance(m, list) or any(not isinstance(r, list) or any(isinstance(x, bool) or x not in (0, 1)
                                                                          for x in r) for r in m):
            raise ValidationError("nb101: matrix must be a list of rows of 0/1")
        if len({len(r) for r in m}) > 1:
            raise ValidationError("nb101: matrix rows differ in length")
        return self.from_cell(m, [OPS.index(o) for o in ops])

    # -- the network ---------------------------------------------------------------------------
    def _stacks(self) -> list[tuple[int, int]]:
        """(channels, resolution) of each stack."""
        o = self.options
        out, c, r = [], o.stem_channels, o.resolution
        for s in range(o.stacks):
            if s > 0:
                c, r = 2 * c, (r + 1) // 2
            out.append((c, r))
        return out

    def _fixed(self) -> tuple[Primitive, list[Primitive], list[Primitive]]:
        """Stem, downsampling pools (one per stack after the first), head."""
        o = self.options
        stacks = self._stacks()
        stem = Primitive("conv", o.in_channels, o.stem_channels, o.resolution, o.resolution, kernel=3, act="relu")
        pools = [Primitive("max_pool_2x2", c // 2, c // 2, stacks[s - 1][1], stacks[s - 1][1], stride=2)
                 for s, (c, _) in enumerate(stacks) if s > 0]
        c, r = stacks[-1]
        head = [Primitive("pool", c, c, r, r, kernel=r, extras=(("mode", "global"),)),
                Primitive("fc", c, o.num_classes, 1, 1)]
        return stem, pools, head

    def to_network(self, arch: Arch) -> NetworkSpec:
        """The stacked-cell CNN of ``arch``'s canonical cell (isomorphic cells: one network)."""
        o = self.options
        canon = self.canonical(arch)
        cell = self.pruned(canon)
        cell = (cell[0], cell[1][1:-1])
        stem, pools, head = self._fixed()
        nodes: list[Primitive] = [stem]
        edges: list[tuple[int, int]] = []
        cur, c_prev = 0, o.stem_channels
        for s, (c, r) in enumerate(self._stacks()):
            if s > 0:
                nodes.append(pools[s - 1])
                edges.append((cur, len(nodes) - 1))
                cur = len(nodes) - 1
            for _ in range(o.cells_per_stack):
                cur = add_cell(nodes, edges, cur, c_prev, c, r, cell)
                c_prev = c
        for p in head:
            nodes.append(p)
            edges.append((cur, len(nodes) - 1))
            cur = len(nodes) - 1
        return NetworkSpec((o.in_channels, o.resolution, o.resolution), tuple(nodes), tuple(edges),
                           (("arch", self.to_str(canon)), ("space", "nb101")))

    def cell_graph(self, arch: Arch) -> NetworkSpec:
        """The stem and one canonical cell of the first stack (GATES-style predictors read
        the cell, not the stacked network that repeats it)."""
        o = self.options
        canon = self.canonical(arch)
        m, labels = self.pruned(canon)
        nodes: list[Primitive] = [self._fixed()[0]]
        edges: list[tuple[int, int]] = []
        add_cell(nodes, edges, 0, o.stem_channels, o.stem_channels, o.resolution, (m, labels[1:-1]))
        return NetworkSpec((o.in_channels, o.resolution, o.resolution), tuple(nodes), tuple(edges),
                           (("arch", self.to_str(canon)), ("cell", True), ("space", "nb101")))

    def primitives(self) -> list[Primitive]:
        o = self.options
        stem, pools, head = self._fixed()
        prims = [stem, *pools, *head]
        c_prev = o.stem_channels
        for c, r in self._stacks():
            prims += cell_primitives(c_prev, c, r, o.vertices, len(OPS))
            prims += cell_primitives(c, c, r, o.vertices, len(OPS))
            c_prev = c
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]
