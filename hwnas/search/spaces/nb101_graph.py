"""Labelled DAGs of NAS-Bench-101 cells: pruning, isomorphism-invariant hashing, and the
enumeration of every unique cell.

A cell is an upper-triangular adjacency matrix over ``V`` vertices (0 is the input,
``V-1`` the output) and one operation label per interior vertex. Two matrices can be
the same network: vertices off every input->output path compute nothing that reaches
the output (:func:`prune` drops them), and renumbering the interior vertices changes
the matrix but not the network. Two invariants identify a cell up to that renumbering:

* :func:`fingerprint` - the iterated neighbourhood hash of the NAS-Bench-101 paper
  (every vertex starts from (out-degree, in-degree, label); each round rehashes a vertex
  with the sorted hashes of its in- and out-neighbours; the cell's hash is that of the
  sorted vertex hashes), computed with MD5 over the same text as the benchmark's own
  files, so a published table keyed by its module hash can be read by this hash;
* :func:`canonical_order` - an exact canonical form: among all renumberings of the
  interior vertices that keep the matrix upper-triangular, the one whose (matrix, labels)
  code is smallest. Isomorphic cells, and only they, get the same form.

:func:`count_unique` enumerates every full DAG (each vertex on an input->output path)
with at most ``max_edges`` edges and every labelling, and counts distinct cells with a
vectorised canonical code (the minimum over all interior permutations of a 64-bit
(matrix, labels) code), split over worker processes. For 7 vertices, 9 edges and
3 operations it gives the published 423,624.
"""
from __future__ import annotations

import hashlib
import itertools
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import numpy as np

#: Labels of the input and output vertices in the fingerprint (the benchmark's).
INPUT_LABEL = -1
OUTPUT_LABEL = -2


def prune(matrix: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, list[int]] | None:
    """The cell without vertices off every input->output path (None: no such path).

    Why: a vertex the input cannot reach, or that cannot reach the output, changes no
    output; keeping it would make two equal networks look different.
    """
    m = np.asarray(matrix, dtype=np.int8)
    v = m.shape[0]
    fwd = np.zeros(v, dtype=bool)
    fwd[0] = True
    for j in range(1, v):  # upper-triangular: one pass in order reaches everything
        fwd[j] = bool((m[:j, j] > 0)[fwd[:j]].any())
    bwd = np.zeros(v, dtype=bool)
    bwd[v - 1] = True
    for i in range(v - 2, -1, -1):
        bwd[i] = bool((m[i, i + 1:] > 0)[bwd[i + 1:]].any())
    keep = fwd & bwd
    if not keep[v - 1] or not keep[0]:
        return None
    idx = np.flatnonzero(keep)
    return m[np.ix_(idx, idx)].copy(), [int(labels[i]) for i in idx]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - an identifier, not security


def fingerprint(matrix: np.ndarray, labels: Sequence[int]) -> str:
    """NAS-Bench-101's graph hash of a (pruned) cell: 32 hex digits, invariant under
    renumbering of the vertices. ``labels`` holds -1 (input), op indices, -2 (output)."""
    return fingerprints(matrix, [labels])[0]


def fingerprints(matrix: np.ndarray, labelings: Sequence[Sequence[int]]) -> list[str]:
    """:func:`fingerprint` of one matrix under many labelings (the graph's neighbour
    lists are read once: the enumeration hashes every labelling of each matrix)."""
    m = np.asarray(matrix, dtype=np.int64)
    v = m.shape[0]
    outs, ins = m.sum(axis=1).tolist(), m.sum(axis=0).tolist()
    preds = [np.flatnonzero(m[:, j]).tolist() for j in range(v)]
    succs = [np.flatnonzero(m[i, :]).tolist() for i in range(v)]
    out = []
    for labels in labelings:
        hashes = [_md5(str((int(outs[i]), int(ins[i]), int(labels[i])))) for i in range(v)]
        for _ in range(v):
            hashes = [_md5("".join(sorted([hashes[p] for p in preds[i]])) + "|"
                           + "".join(sorted([hashes[s] for s in succs[i]])) + "|" + hashes[i]) for i in range(v)]
        out.append(_md5(str(sorted(hashes))))
    return out


def _interior_perms(v: int) -> np.ndarray:
    """Every renumbering that fixes the input (0) and output (v-1): shape (n!, v)."""
    inner = list(itertools.permutations(range(1, v - 1)))
    return np.array([(0, *p, v - 1) for p in inner], dtype=np.int64).reshape(len(inner), v)


def _matrix_codes(mats: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(D, P) int64: bit ``i*v+j`` set when the renumbered matrix has edge i->j."""
    v = mats.shape[1]
    weights = (np.int64(1) << np.arange(v * v, dtype=np.int64)).reshape(v, v)
    out = np.empty((mats.shape[0], perms.shape[0]), dtype=np.int64)
    for k, p in enumerate(perms):
        out[:, k] = (mats[:, p][:, :, p].astype(np.int64) * weights).reshape(mats.shape[0], -1).sum(axis=1)
    return out


def canonical_order(matrix: np.ndarray, labels: Sequence[int]) -> list[int]:
    """The renumbering (new position -> old vertex) of the exact canonical form: the
    smallest (matrix, labels) code among upper-triangular renumberings."""
    m = np.asarray(matrix, dtype=np.int8)
    v = m.shape[0]
    perms = _interior_perms(v)
    permuted = m[perms[:, :, None], perms[:, None, :]]  # (P, v, v)
    upper = ~np.tril(permuted).reshape(len(perms), -1).any(axis=1)
    perms, permuted = perms[upper], permuted[upper]
    lab = np.asarray(labels, dtype=np.int64)[perms]
    keys = np.concatenate([permuted.reshape(len(perms), -1).astype(np.int64), lab], axis=1)
    best = np.lexsort(keys.T[::-1])[0]
    return perms[best].tolist()


def full_dags(vertices: int, max_edges: int) -> np.ndarray:
    """Every upper-triangular matrix (D, v, v) with at most ``max_edges`` edges in which
    every vertex but the output has an out-edge and every vertex but the input an in-edge
    (so every vertex is on an input->output path)."""
    iu = np.triu_indices(vertices, 1)
    n_bits = len(iu[0])
    mats = []
    chunk = 1 << 18
    for start in range(0, 1 << n_bits, chunk):
        codes = np.arange(start, min(start + chunk, 1 << n_bits), dtype=np.int64)
        bits = ((codes[:, None] >> np.arange(n_bits, dtype=np.int64)) & 1).astype(np.int8)
        bits = bits[bits.sum(axis=1) <= max_edges]
        m = np.zeros((len(bits), vertices, vertices), dtype=np.int8)
        m[:, iu[0], iu[1]] = bits
        full = (m[:, :-1, :].sum(axis=2) > 0).all(axis=1) & (m[:, :, 1:].sum(axis=1) > 0).all(axis=1)
        mats.append(m[full])
    return np.concatenate(mats) if mats else np.zeros((0, vertices, vertices), dtype=np.int8)


def labelings(n_interior: int, n_ops: int) -> np.ndarray:
    """Every labelling of the interior vertices: (n_ops ** n_interior, n_interior)."""
    rows = list(itertools.product(range(n_ops), repeat=n_interior))
    return np.array(rows, dtype=np.int64).reshape(len(rows), n_interior)


def canonical_codes(mats: np.ndarray, n_ops: int) -> np.ndarray:
    """Distinct canonical 64-bit codes of every labelled cell over the matrices ``mats``
    (all of one vertex count): the minimum over interior permutations of
    (matrix code << label bits) | label code."""
    v = mats.shape[1]
    n = v - 2
    label_bits = max(1, int(n_ops - 1).bit_length())
    if v * v + n * label_bits > 63:
        raise ValueError(f"{v} vertices and {n_ops} ops do not fit a 63-bit code")
    perms = _interior_perms(v)
    adj = _matrix_codes(mats, perms)  # (D, P)
    labs = labelings(n, n_ops)
    shift = np.int64(1) << (label_bits * np.arange(n, dtype=np.int64))
    lab = np.stack([(labs[:, p[1:-1] - 1] * shift).sum(axis=1) for p in perms], axis=1)  # (L, P)
    out = []
    for d in range(0, len(mats), 256):
        codes = (adj[d:d + 256, None, :] << np.int64(label_bits * n)) | lab[None, :, :]
        out.append(np.unique(codes.min(axis=2)))
    return np.unique(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def decode(code: int, vertices: int, n_ops: int) -> tuple[np.ndarray, list[int]]:
    """The (renumbered) matrix and labels (-1, ops, -2) of a :func:`canonical_codes` code."""
    n = vertices - 2
    label_bits = max(1, int(n_ops - 1).bit_length())
    code = int(code)
    lab = [(code >> (label_bits * k)) & ((1 << label_bits) - 1) for k in range(n)]
    adj = code >> (label_bits * n)
    m = np.array([(adj >> b) & 1 for b in range(vertices * vertices)], dtype=np.int8).reshape(vertices, vertices)
    return m, [INPUT_LABEL, *lab, OUTPUT_LABEL]


def _codes_job(args: tuple[np.ndarray, int]) -> np.ndarray:
    return canonical_codes(*args)


def _hash_job(args: tuple[np.ndarray, int, int]) -> list[str]:
    codes, v, n_ops = args
    return [fingerprint(*decode(c, v, n_ops)) for c in codes]


def unique_codes(max_vertices: int = 7, max_edges: int = 9, n_ops: int = 3,
                 processes: int = 1) -> dict[int, np.ndarray]:
    """Vertex count -> the distinct canonical codes of its labelled cells (2..``max_vertices``
    vertices), computed on ``processes`` worker processes (1: in this process)."""
    out: dict[int, np.ndarray] = {}
    pool = ProcessPoolExecutor(processes) if processes > 1 else None
    try:
        for v in range(2, max_vertices + 1):
            mats = full_dags(v, max_edges)
            if pool is None or len(mats) < 64:
                out[v] = canonical_codes(mats, n_ops)
                continue
            parts = [(part, n_ops) for part in np.array_split(mats, processes * 4)]
            out[v] = np.unique(np.concatenate(list(pool.map(_codes_job, parts))))
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def count_unique(max_vertices: int = 7, max_edges: int = 9, n_ops: int = 3, processes: int = 1) -> dict[int, int]:
    """Vertex count -> number of distinct labelled cells (see :func:`unique_codes`)."""
    return {v: len(c) for v, c in unique_codes(max_vertices, max_edges, n_ops, processes).items()}


def hash_classes(codes: dict[int, np.ndarray], n_ops: int = 3, processes: int = 1) -> int:
    """Distinct :func:`fingerprint` values over one representative per canonical class:
    equal to the number of classes exactly when the benchmark hash has no collision
    (it is invariant by construction, so hashing every member adds nothing)."""
    seen: set[str] = set()
    for v, cs in codes.items():
        parts = [(part, v, n_ops) for part in np.array_split(cs, max(1, processes * 4))]
        if processes <= 1 or len(cs) < 1000:
            for part in parts:
                seen.update(_hash_job(part))
            continue
        with ProcessPoolExecutor(processes) as pool:
            for hashes in pool.map(_hash_job, parts):
                seen.update(hashes)
    return len(seen)
