"""The dataset contract for text datasets (``task = "language"``), and a small corpus writer.

A language batch is ``(x, y)``: ``x`` token ids (batch x time, int64, in the vocabulary),
``y`` the next token of each position flattened batch-major (``batch * time``). What the
search loops rely on is checked: shapes and ranges, targets being the inputs shifted by
one, every target served once per pass (up to the tokens batchify drops: fewer than a
batch row per split, plus the last token of each row), and seeded orders.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search.datasets.base import SPLITS
from hwnas.testing._common import expect

ROLE = "dataset"
BATCH = 5


def _pass(ds: Any, split: str, shuffle: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(x), np.asarray(y)) for x, y in ds.loader(split, batch_size=BATCH, shuffle=shuffle, seed=seed)]


def check_split(name: str, ds: Any, split: str) -> None:
    n = ds.size(split)
    expect(isinstance(n, int) and n > 2 * BATCH, ROLE, name, f"size({split!r}) of its example must exceed "
                                                             f"{2 * BATCH} tokens, got {n!r}")
    served = 0
    for x, y in _pass(ds, split, True, 1):
        expect(x.ndim == 2 and x.shape[0] == BATCH and x.dtype == np.int64, ROLE, name,
               f"{split} inputs must be int64 {BATCH} x T token windows, got {x.shape} {x.dtype}")
        expect(y.shape == (x.size,) and y.dtype == np.int64, ROLE, name,
               f"targets must be int64 of {x.size} (batch * time), got {y.shape} {y.dtype}")
        for t in (x, y):
            expect(((t >= 0) & (t < ds.num_classes)).all(), ROLE, name, f"token ids must lie in [0, {ds.num_classes})")
        yy = y.reshape(x.shape)
        expect(np.array_equal(yy[:, :-1], x[:, 1:]), ROLE, name, "targets must be the inputs shifted by one token")
        served += y.size
    expect(n - 2 * BATCH < served <= n, ROLE, name, f"a pass over {split!r} served {served} targets of {n} tokens")


def check_language(name: str, ds: Any, again: Any) -> None:
    """Every split's batches; the same seed gives the same order (also from ``again``, a
    second instance), another seed another order; unshuffled passes read text in order."""
    for split in SPLITS:
        check_split(name, ds, split)
    a, b = _pass(ds, "train", True, 3), _pass(ds, "train", True, 3)
    same = len(a) == len(b) and all(np.array_equal(p[1], q[1]) for p, q in zip(a, b))
    expect(same, ROLE, name, "two loaders with the same seed must serve the same windows in the same order")
    c, d = _pass(again, "train", False, 0), _pass(ds, "train", False, 0)
    expect(len(c) == len(d) and all(np.array_equal(p[1], q[1]) for p, q in zip(c, d)), ROLE, name,
           "two instances with the same seed must serve the same text")
    rows = np.concatenate([x for x, _ in d], axis=1)
    nxt = np.concatenate([y.reshape(x.shape) for x, y in d], axis=1)
    expect(np.array_equal(nxt[:, :-1], rows[:, 1:]), ROLE, name,
           "an unshuffled pass must read each row's text window after window")
    if len(a) >= 4:
        e = _pass(ds, "train", True, 4)
        expect(not all(np.array_equal(p[1], q[1]) for p, q in zip(a, e)) or len(a) != len(e), ROLE, name,
               "another loader seed must give another order")


#: A small vocabulary for :func:`write_corpus`, most frequent first.
WORDS = ("the of and to a in is that it was he for on are as with his they at be this from have or by one had not "
         "but what all were when we there can an your which their said if do will each about how up out them then "
         "she many some so these would other into has more her two like him see time could no make than first been "
         "its who now people my made over did down only way find use may water long little very after words called "
         "just where most know").split()


def write_corpus(folder: Path, tokens: tuple[int, int, int] = (1200, 300, 300), seed: int = 0) -> Path:
    """A PTB-layout corpus of Zipf-distributed words with a bigram tendency (so a model can
    beat the unigram), ``tokens`` words per split; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    for split, n in zip(SPLITS, tokens):
        lines, line = [], []
        prev = 0
        for _ in range(n):
            w = (prev + 1) % len(WORDS) if rng.random() < 0.5 else int(rng.choice(len(WORDS), p=p))
            line.append(WORDS[w])
            prev = w
            if len(line) >= 8 + int(rng.integers(8)):
                lines.append(" ".join(line))
                line = []
        lines.append(" ".join(line) or "the")
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def corpus_example(tmp_dir: Path) -> dict[str, Any]:
    """A run config reading a generated corpus: dataset, an rnn_cell space sized to its vocabulary."""
    from hwnas.search.language.corpus import Corpus

    root = write_corpus(Path(tmp_dir) / "corpus")
    vocab = len(Corpus.load(root).vocab)
    return {"dataset": {"type": "ptb", "root": str(root), "bptt": 6, "bptt_std": 1.0},
            "search_space": {"type": "rnn_cell", "nodes": 3, "num_classes": vocab, "emb": 8, "nhid": 8, "seq_len": 6}}


def register_examples(table: dict[tuple[str, str], Any]) -> None:
    """The language components' rows of :data:`hwnas.testing.examples.EXAMPLES`."""
    table[("dataset", "ptb")] = corpus_example
    table[("search_space", "rnn_cell")] = lambda tmp_dir: {
        "search_space": {"type": "rnn_cell", "nodes": 4, "num_classes": 50, "emb": 8, "nhid": 8, "seq_len": 5}}
    table[("weights_manager", "rnn_supernet")] = lambda tmp_dir: {
        "search_space": {"type": "rnn_cell", "nodes": 3, "num_classes": 30, "emb": 8, "nhid": 8, "seq_len": 5},
        "weights_manager": {"type": "rnn_supernet"}}
    table[("objective", "language")] = lambda tmp_dir: {
        **corpus_example(tmp_dir), "weights_manager": {"type": "rnn_supernet"},
        "objective": {"type": "language", "batch_size": 4, "bptt": 6, "max_windows": 5}}
