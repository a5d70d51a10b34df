"""Genotypes of cell spaces: the string people read, write and paste from papers.

A genotype lists, for each cell type (``normal``, ``reduce``) and each intermediate
node, the (operation, input) pairs that feed it; input 0 and 1 are the cell's two
inputs, input ``k + 2`` is intermediate node ``k``. Two spellings are read:

* ours, compact and shell-friendly, nodes separated by ``|``::

      normal:sep_conv_3x3~0,sep_conv_3x3~1|skip_connect~0,sep_conv_3x3~1|...;reduce:max_pool_3x3~0,...

* the DARTS reference code's ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6),
  reduce=[...], reduce_concat=range(2, 6))`` (pairs in node order), so published cells
  paste in unchanged.

Every parse error is one line naming the cell, the node and what was expected.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from hwnas.errors import ValidationError

CELL_TYPES: tuple[str, ...] = ("normal", "reduce")

#: cell type -> per node, the (op, input) pairs feeding it.
Genotype = dict[str, list[list[tuple[str, int]]]]

_PAIR = re.compile(r"\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*,\s*([0-9]+)\s*\)")


def format_genotype(genotype: Mapping[str, Sequence[Sequence[tuple[str, int]]]]) -> str:
    """Our string form (see the module docstring)."""
    return ";".join(f"{t}:" + "|".join(",".join(f"{op}~{j}" for op, j in node) for node in genotype[t])
                    for t in CELL_TYPES)


def check_genotype(genotype: Mapping[str, Any], ops: Sequence[str], nodes: int, inputs: int = 2,
                   where: str = "genotype") -> Genotype:
    """Validate a genotype mapping (from a string or YAML): every cell type, ``nodes``
    nodes of ``inputs`` pairs, known ops, inputs that exist before the node."""
    if not isinstance(genotype, Mapping):
        raise ValidationError(f"{where}: expected a mapping with {' and '.join(CELL_TYPES)}, got {genotype!r}")
    extra = set(genotype) - set(CELL_TYPES)
    if extra:
        raise ValidationError(f"{where}: unknown cell type(s) {', '.join(sorted(map(str, extra)))}; "
                              f"expected {' and '.join(CELL_TYPES)}")
    out: Genotype = {}
    for t in CELL_TYPES:
        cell = genotype.get(t)
        if not isinstance(cell, (list, tuple)) or len(cell) != nodes:
            raise ValidationError(f"{where}.{t}: expected {nodes} nodes, got {cell!r}")
        out[t] = []
        for i, node in enumerate(cell):
            if not isinstance(node, (list, tuple)) or len(node) != inputs:
                raise ValidationError(f"{where}.{t} node {i}: expected {inputs} (op, input) pairs, got {node!r}")
            pairs = []
            for pair in node:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValidationError(f"{where}.{t} node {i}: expected an (op, input) pair, got {pair!r}")
                op, j = pair
                if op not in ops:
                    raise ValidationError(f"{where}.{t} node {i}: unknown op {op!r} (known: {', '.join(ops)})")
                if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < i + 2:
                    raise ValidationError(f"{where}.{t} node {i}: input must be 0..{i + 1} (cell inputs 0, 1, "
                                          f"earlier nodes 2..), got {j!r}")
                pairs.append((str(op), int(j)))
            out[t].append(pairs)
    return out


def _parse_ours(text: str) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for part in text.split(";"):
        name, sep, body = part.strip().partition(":")
        if not sep or not name.strip():
            raise ValueError(f"expected 'normal:...;reduce:...', got part {part.strip()!r}")
        nodes = []
        for node in body.split("|"):
            pairs = []
            for item in node.split(","):
                op, sep, j = item.strip().partition("~")
                if not sep or not (j.strip().isascii() and j.strip().isdigit()):
                    raise ValueError(f"expected OP~INPUT in {name.strip()}, got {item.strip()!r}")
                pairs.append((op.strip(), int(j)))
            nodes.append(pairs)
        cells[name.strip()] = nodes
    return cells


def _parse_darts(text: str, inputs: int) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for t in CELL_TYPES:
        m = re.search(rf"\b{t}\s*=\s*\[([^\]]*)\]", text)
        if m is None:
            raise ValueError(f"no {t}=[...] list")
        pairs = [(op, int(j)) for op, j in _PAIR.findall(m.group(1))]
        if len(pairs) % inputs:
            raise ValueError(f"{t} has {len(pairs)} pairs, not a multiple of {inputs}")
        cells[t] = [pairs[k:k + inputs] for k in range(0, len(pairs), inputs)]
        concat = re.search(rf"\b{t}_concat\s*=\s*(?:range\(\s*(\d+)\s*,\s*(\d+)\s*\)|\[([\d,\s]*)\])", text)
        if concat is not None:
            want = list(range(2, 2 + len(cells[t])))
            got = list(range(int(concat.group(1)), int(concat.group(2)))) if concat.group(1) else \
                [int(v) for v in concat.group(3).split(",") if v.strip()]
            if got != want:
                raise ValueError(f"{t}_concat must be every intermediate node {want}, got {got}")
    return cells


def parse_genotype(text: str, ops: Sequence[str], nodes: int, inputs: int = 2) -> Genotype:
    """A genotype from either spelling, validated (one-line ValidationError otherwise)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"genotype: expected a string such as '{_example(ops, nodes)}', got {text!r}")
    if not text.isascii():
        i = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise ValidationError(f"genotype: architecture strings are ASCII; got {text[i]!r} (U+{ord(text[i]):04X}) "
                              f"at position {i}")
    s = text.strip()
    try:
        cells = _parse_darts(s, inputs) if s.startswith("Genotype") else _parse_ours(s)
    except ValueError as exc:
        raise ValidationError(f"genotype: cannot parse {_short(s)} ({exc})") from None
    return check_genotype(cells, ops, nodes, inputs)


def _example(ops: Sequence[str], nodes: int) -> str:
    op = next((o for o in ops if o != "none"), ops[0])
    node = f"{op}~0,{op}~1"
    return f"normal:{'|'.join([node] * nodes)};reduce:{'|'.join([node] * nodes)}"


def _short(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")
