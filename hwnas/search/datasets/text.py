"""Text corpora for language modelling (dataset ``ptb``): any corpus in the PTB layout.

See :mod:`hwnas.search.language.corpus` for the layout, the vocabulary and the
out-of-vocabulary policy. For the search engine a batch is ``(x, y)``: ``x`` the token
ids of a window (batch x time, int64), ``y`` the next token of every position,
flattened batch-major (``batch * time``), which is the order a language-model
candidate's logits come in; so cross-entropy, token accuracy, the training core,
``mepa`` and the differentiable trainer work on text as on images. A pass over a split
cuts it into ``batch_size`` contiguous rows and reads them in windows: fixed ``bptt``
windows in order (``shuffle: false``, evaluation), or windows of AWD-LSTM's variable
length in a seeded random order (``shuffle: true``, training). Every target token of the
batchified split is served once per pass (the ``< batch_size`` tokens that do not fill a
row, and the last token of each row, are not). ``num_classes`` is the vocabulary size,
``resolution`` the window length and ``in_channels`` 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.datasets.base import Dataset
from hwnas.search.language.corpus import Corpus, batchify, bptt_windows


class TokenBatches:
    """The windows of one pass over a batchified split (a re-iterable loader with ``len``)."""

    def __init__(self, rows: np.ndarray, windows: list[tuple[int, int]], order: list[int]) -> None:
        self.rows, self.windows, self.order = rows, windows, order

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch

        data = torch.from_numpy(self.rows)
        for k in self.order:
            i, seq = self.windows[k]
            yield data[:, i:i + seq].contiguous(), data[:, i + 1:i + 1 + seq].reshape(-1)


@register("dataset", "ptb")
class TextCorpusDataset(Dataset):
    """A PTB-layout text corpus (train/valid/test .txt, <unk>, <eos>): windows of token ids."""

    #: Batches are token windows and next-token targets (the dataset contract suite checks those).
    task = "language"

    @dataclass(frozen=True)
    class Options:
        root: Path = opt(Path("data/ptb"), help="folder with train.txt, valid.txt, test.txt (PTB layout)")
        bptt: int = opt(35, min=2, max=10000, help="tokens per window (evaluation; the mean length in training)")
        bptt_std: float = opt(5.0, min=0.0, help="std of the training windows' length around bptt (AWD-LSTM: 5)")
        variable_length: bool = opt(True, help="training windows of random length around bptt (false: fixed bptt)")
        oov: Literal["unk", "error"] = opt("unk", help="valid/test tokens outside the training vocabulary: map to "
                                                       "<unk> and count them, or refuse the file")
        max_vocab: int = opt(0, min=0, help="keep the most frequent words only (0 = every training word)")
        max_train_tokens: int = opt(0, min=0, help="use the first N training tokens (0 = all); quick searches")

    def __init__(self, options: "TextCorpusDataset.Options | None" = None, *, seed: int = 0,
                 base_dir: Path | None = None, **_: Any) -> None:
        self.options = options or TextCorpusDataset.Options()
        self.seed = int(seed)
        self.corpus: Corpus | None = None
        self.in_channels = 1
        self.resolution = self.options.bptt

    def prepare(self) -> TextCorpusDataset:
        if self.corpus is None:
            o = self.options
            self.corpus = Corpus.load(o.root, max_vocab=o.max_vocab, oov=o.oov, max_tokens=o.max_train_tokens)
            self.num_classes = len(self.corpus.vocab)
        return self

    def size(self, split: str) -> int:
        """Tokens of ``split`` (targets served per pass: a little fewer, see the module docstring)."""
        corpus = self.prepare().corpus
        assert corpus is not None
        return int(len(corpus.ids[split]))

    def loader(self, split: str, *, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
               world: int = 1, drop_last: bool = False) -> TokenBatches:
        """Windows of ``split`` (see the module docstring); rank ``rank`` of ``world`` takes
        every ``world``-th window of the (shuffled) order."""
        corpus = self.prepare().corpus
        assert corpus is not None
        o = self.options
        rows = batchify(corpus.ids[split], batch_size)
        rng = np.random.default_rng([self.seed, seed, 1]) if shuffle else None
        windows = bptt_windows(rows.shape[1], o.bptt, rng if o.variable_length and split == "train" else None,
                               o.bptt_std)
        order = list(range(len(windows)))
        if rng is not None:
            order = [int(k) for k in rng.permutation(len(windows))]
        order = order[rank::world]
        if drop_last and world > 1:
            order = order[:len(windows) // world]
        return TokenBatches(rows, windows, order)
