"""The DARTS / ENAS recurrent-cell space (``rnn_cell``): the cell of a word-level language model.

The cell (Pham et al., 2018; Liu et al., 2019) turns the input ``x_t`` and the previous
state ``h_{t-1}`` into ``h_t`` through ``nodes`` intermediate nodes. State 0 is
``s0 = h + c0 * (tanh(h0) - h)`` with ``[c0, h0] = W0 [x_t; h_{t-1}]`` and ``c0``
through a sigmoid. Node ``i`` reads one earlier state ``s_j`` (``0 <= j <= i``; state
``k + 1`` is node ``k``), computes ``[c, h] = W_i s_j`` and applies the highway
connection ``s = s_j + sigmoid(c) * (act(h) - s_j)`` (``c * act(h) + (1 - c) * s_j``)
with its activation (tanh, relu, sigmoid or identity); ``h_t`` is the mean of the
nodes' outputs. An architecture is, per node, (activation, input).

Genotype strings: ours, one ``ACT~INPUT`` per node joined by ``|`` (``tanh~0|relu~1|...``),
or the DARTS reference code's ``Genotype(recurrent=[('tanh', 0), ...], concat=range(1, 9))``
so published cells paste in unchanged. Differentiable search keeps one distribution
over the activations per edge (node ``i``, input ``j``), as DARTS-RNN does, and derives
for each node the input whose strongest activation weighs most.

As a NetworkSpec (input shape ``(1, 1, seq_len)``) the model is embedding -> ``rnn_input``
(``W0``) -> one ``rnn_node`` per node (its activation in ``extras``) -> ``rnn_mean`` ->
``lm_decoder``; the primitives carry the sizes a cost table needs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.errors import ConfigError, ValidationError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, Arch, Decision, SearchSpace, ascii_text
from hwnas.search.spaces.differentiable import ParamGroup, check_weights, one_hot

#: Activations a node may apply (DARTS-RNN's operations, without ``none``).
ACTS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
_PAIR = re.compile(r"\(\s*'([A-Za-z0-9_]+)'\s*,\s*([0-9]+)\s*\)")
_DARTS = re.compile(r"^Genotype\(\s*recurrent\s*=\s*\[(.*)\]\s*,\s*concat\s*=\s*range\(\s*1\s*,\s*([0-9]+)\s*\)\s*\)$")

#: Per node, (activation, input state).
RnnGenotype = list[tuple[str, int]]


@register("search_space", "rnn_cell")
class RnnCellSpace(SearchSpace):
    """DARTS/ENAS recurrent cells: per node an input state and an activation, highway connections."""

    @dataclass(frozen=True)
    class Options:
        nodes: int = opt(8, min=1, max=16, help="intermediate nodes of the cell (DARTS and ENAS: 8)")
        activations: list[str] = opt(list(ACTS), min_items=1, unique=True,
                                     help=f"activations a node chooses from (of {', '.join(ACTS)})")
        num_classes: int = opt(10000, min=2, max=MAX_CLASSES, help="vocabulary size (the dataset's num_classes)")
        emb: int = opt(300, min=1, max=MAX_CHANNELS, help="word-embedding size (DARTS search: 300)")
        nhid: int = opt(300, min=1, max=MAX_CHANNELS, help="hidden-state size (DARTS search: 300)")
        seq_len: int = opt(35, min=1, max=10000, help="tokens per window the network spec (and cost) describes")

        def check(self) -> None:
            bad = [a for a in self.activations if a not in ACTS]
            if bad:
                raise ConfigError(f"activations: unknown activation {bad[0]!r}; known: {', '.join(ACTS)}")

    def __init__(self, options: "RnnCellSpace.Options | None" = None, **kw: object) -> None:
        self.options = options or RnnCellSpace.Options(**kw)  # type: ignore[arg-type]
        if options is None:
            self.options.check()
        self.acts: tuple[str, ...] = tuple(self.options.activations)
        #: Rows of the differentiable edge matrix: (node i, input state j).
        self.edge_rows: list[tuple[int, int]] = [(i, j) for i in range(self.options.nodes) for j in range(i + 1)]
        super().__init__()

    # -- decisions and genotypes ----------------------------------------------------------
    def build_decisions(self) -> Sequence[Decision]:
        out = []
        for i in range(self.options.nodes):
            out += [Decision(f"n{i}.in", tuple(range(i + 1))), Decision(f"n{i}.act", self.acts)]
        return out

    def genotype(self, arch: Arch) -> RnnGenotype:
        arch = self.validate(arch)
        return [(self.acts[arch[2 * i + 1]], arch[2 * i]) for i in range(self.options.nodes)]

    def from_genotype(self, genotype: Any, where: str = "genotype") -> Arch:
        """Validate a genotype (a list of [activation, input] pairs, one per node)."""
        n = self.options.nodes
        if not isinstance(genotype, (list, tuple)) or len(genotype) != n:
            raise ValidationError(f"{where}: expected {n} (activation, input) pairs, got {str(genotype)[:60]}")
        out: list[int] = []
        for i, pair in enumerate(genotype):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValidationError(f"{where} node {i}: expected an (activation, input) pair, got {str(pair)[:40]}")
            act, j = pair
            if act not in self.acts:
                raise ValidationError(f"{where} node {i}: unknown activation {str(act)[:20]!r} "
                                      f"(known: {', '.join(self.acts)})")
            if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j <= i:
                raise ValidationError(f"{where} node {i}: input must be 0..{i} (0 = the cell's first state, "
                                      f"k = node k-1), got {str(j)[:20]}")
            out += [j, self.acts.index(act)]
        return tuple(out)

    def to_str(self, arch: Arch) -> str:
        return "|".join(f"{act}~{j}" for act, j in self.genotype(arch))

    def from_str(self, text: str) -> Arch:
        s = ascii_text(self.name, text).strip()
        if s.startswith("Genotype"):
            return self.from_genotype(self._parse_darts(s))
        pairs: list[tuple[str, int]] = []
        for i, item in enumerate(s.split("|") if s else []):
            act, sep, j = item.strip().partition("~")
            if not sep or not (j.isascii() and j.isdigit()):
                raise ValidationError(f"{self.name}: node {i}: expected ACT~INPUT such as tanh~0, got {item[:30]!r}")
            pairs.append((act, int(j)))
        return self.from_genotype(pairs, f"{self.name}: genotype {s[:40]!r}")

    def _parse_darts(self, s: str) -> list[tuple[str, int]]:
        m = _DARTS.match(s)
        if m is None:
            raise ValidationError(f"{self.name}: expected Genotype(recurrent=[('tanh', 0), ...], concat=range(1, "
                                  f"{self.options.nodes + 1})), got {s[:60]!r}")
        body = m.group(1)
        pairs = [(a, int(j)) for a, j in _PAIR.findall(body)]
        if _PAIR.sub("", body).replace(",", "").strip():
            raise ValidationError(f"{self.name}: recurrent=[...] must hold ('act', input) pairs only, got {body[:60]!r}")
        if int(m.group(2)) != self.options.nodes + 1:
            raise ValidationError(f"{self.name}: concat must be range(1, {self.options.nodes + 1}) (every node), "
                                  f"got range(1, {m.group(2)})")
        return pairs

    def to_darts_str(self, arch: Arch) -> str:
        """The DARTS reference code's spelling of the cell."""
        pairs = ", ".join(f"('{a}', {j})" for a, j in self.genotype(arch))
        return f"Genotype(recurrent=[{pairs}], concat=range(1, {self.options.nodes + 1}))"

    def to_jsonable(self, arch: Arch) -> Any:
        """``[[act, input], ...]``, one pair per node."""
        return [[a, j] for a, j in self.genotype(arch)]

    def from_jsonable(self, obj: Any) -> Arch:
        if isinstance(obj, str):
            return self.from_str(obj)
        if isinstance(obj, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in obj):
            return self.validate(obj)
        return self.from_genotype(obj)

    # -- networks and primitives ------------------------------------------------------------
    def _fixed(self) -> tuple[Primitive, Primitive, Primitive, Primitive]:
        o = self.options
        t = o.seq_len
        return (Primitive("embedding", o.num_classes, o.emb, 1, t),
                Primitive("rnn_input", o.emb + o.nhid, 2 * o.nhid, 1, t),
                Primitive("rnn_mean", o.nodes * o.nhid, o.nhid, 1, t),
                Primitive("lm_decoder", o.nhid, o.num_classes, 1, t))

    def node_primitive(self, act: str) -> Primitive:
        o = self.options
        return Primitive("rnn_node", o.nhid, 2 * o.nhid, 1, o.seq_len, extras=(("act_fn", act),))

    def to_network(self, arch: Arch) -> NetworkSpec:
        emb, inp, mean, dec = self._fixed()
        nodes: list[Primitive] = [emb, inp]
        edges = [(0, 1)]
        state = [1]  # NetworkSpec node of each cell state
        for act, j in self.genotype(arch):
            nodes.append(self.node_primitive(act))
            edges.append((state[j], len(nodes) - 1))
            state.append(len(nodes) - 1)
        nodes += [mean, dec]
        edges += [(s, len(nodes) - 2) for s in state[1:]] + [(len(nodes) - 2, len(nodes) - 1)]
        return NetworkSpec((1, 1, self.options.seq_len), tuple(nodes), tuple(edges),
                           (("arch", self.to_str(arch)), ("space", "rnn_cell")))

    def primitives(self) -> list[Primitive]:
        prims = [*self._fixed(), *(self.node_primitive(a) for a in self.acts)]
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]

    def example_input(self, batch: int, generator: Any = None) -> Any:
        """Token ids (batch x seq_len): what a candidate of this space reads."""
        import torch

        return torch.randint(0, self.options.num_classes, (batch, self.options.seq_len), generator=generator)

    def output_rows(self, batch: int) -> int:
        """Rows of a candidate's logits for ``batch`` sequences: one per token."""
        return batch * self.options.seq_len

    # -- differentiable search ---------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        """One (edge x activation) matrix, DARTS-RNN's alpha: a row per (node, input state)."""
        return [ParamGroup("recurrent", len(self.edge_rows), self.acts)]

    def derive(self, weights: Mapping[str, np.ndarray]) -> Arch:
        """Per node, the input whose strongest activation weighs most, with that activation."""
        w = check_weights(self.param_groups(), weights)["recurrent"]
        genotype, row = [], 0
        for i in range(self.options.nodes):
            block = w[row:row + i + 1]
            j = int(np.argmax(block.max(axis=1)))
            genotype.append((self.acts[int(block[j].argmax())], j))
            row += i + 1
        return self.from_genotype(genotype)

    def arch_weights(self, arch: Arch) -> dict[str, np.ndarray]:
        """One-hot rows for the chosen (node, input) edges; other rows all zero."""
        out = one_hot(self.param_groups(), {"recurrent": [0] * len(self.edge_rows)})
        out["recurrent"][:] = 0.0
        for i, (act, j) in enumerate(self.genotype(arch)):
            out["recurrent"][self.edge_rows.index((i, j)), self.acts.index(act)] = 1.0
        return out
