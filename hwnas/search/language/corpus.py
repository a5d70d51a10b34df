"""PTB-format text corpora: vocabulary, token ids, batchify and variable-length BPTT.

The layout (Mikolov's Penn Treebank, and the language-model recipes built on it: AWD-LSTM,
ENAS, DARTS) is a folder with ``train.txt``, ``valid.txt`` and ``test.txt``: one sentence
per line, tokens separated by blanks, rare words already replaced by ``<unk>``. Every
line ends with an ``<eos>`` token. Any corpus written that way works.

Why the vocabulary comes from the training split alone: a word seen only at test time has
no trained embedding, so counting it as its own class would test nothing. A token of
``valid`` / ``test`` outside the vocabulary is, by the ``oov`` policy, either mapped to
``<unk>`` and counted (``oov: unk``, the default; the count is reported per split, so no
token is lost silently) or refused in one line naming the file, line and token
(``oov: error``).

Batching follows the AWD-LSTM recipe: a split is one token stream cut into ``B``
contiguous rows (:func:`batchify`), read left to right in windows; for training the
window length is drawn around ``bptt`` (:func:`bptt_windows`: ``bptt`` with probability
0.95, else ``bptt / 2``, plus Gaussian noise), so the network does not learn where
windows begin.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.errors import ConfigError, InputError

SPLIT_FILES: dict[str, str] = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
UNK, EOS = "<unk>", "<eos>"
LAYOUT = "a folder with train.txt, valid.txt and test.txt: one sentence per line, tokens separated by blanks"


def read_lines(path: Path, where: str = "dataset.root") -> list[list[str]]:
    """Token lists of the non-blank lines of ``path`` (each ending with ``<eos>``); a
    missing, unreadable or empty file is a one-line ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"{where}: {path} not found (expected {LAYOUT}); hwnas never downloads data")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); expected {LAYOUT}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path} ({exc.strerror})") from None
    lines = [line.split() + [EOS] for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: empty corpus (no tokens); expected one sentence per line")
    return lines


@dataclass(frozen=True)
class Vocab:
    """Words by id: the most frequent first (ties by spelling), ``<eos>`` and ``<unk>`` always in."""

    words: tuple[str, ...]
    ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    @property
    def unk(self) -> int:
        return self.ids[UNK]

    @classmethod
    def build(cls, lines: list[list[str]], max_size: int = 0) -> Vocab:
        """From training lines; ``max_size`` > 0 keeps that many words (the rest become ``<unk>``)."""
        counts = Counter(tok for line in lines for tok in line)
        order = sorted(counts, key=lambda w: (-counts[w], w))
        for special in (EOS, UNK):
            if special not in counts:
                order.append(special)
        if max_size:
            keep = [w for w in order if w not in (EOS, UNK)][:max(0, max_size - 2)]
            order = [w for w in order if w in keep or w in (EOS, UNK)]
        return cls(tuple(order))

    def encode(self, lines: list[list[str]], path: Path, oov: str) -> tuple[np.ndarray, int]:
        """Token ids of ``lines`` and how many tokens were outside the vocabulary (mapped to
        ``<unk>``); ``oov == "error"`` refuses the first such token instead."""
        out = np.empty(sum(len(line) for line in lines), dtype=np.int64)
        unknown, k, unk = 0, 0, self.unk
        for n, line in enumerate(lines, 1):
            for tok in line:
                i = self.ids.get(tok)
                if i is None:
                    if oov == "error":
                        raise InputError(f"{path}: line {n}: token {tok[:40]!r} is not in the training vocabulary "
                                         "(set dataset.oov: unk to map it to <unk>)")
                    unknown += 1
                    i = unk
                out[k] = i
                k += 1
        return out, unknown


@dataclass
class Corpus:
    """The three splits as token ids over the training vocabulary, with OOV counts."""

    root: Path
    vocab: Vocab
    ids: dict[str, np.ndarray]
    oov: dict[str, int]

    @classmethod
    def load(cls, root: str | Path, *, max_vocab: int = 0, oov: str = "unk", max_tokens: int = 0) -> Corpus:
        """Read ``root`` (see the module docstring); ``max_tokens`` > 0 keeps the first
        that many tokens of the training split (quick searches)."""
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"dataset.root: {root} is not a folder (expected {LAYOUT})")
        lines = {s: read_lines(root / f) for s, f in SPLIT_FILES.items()}
        vocab = Vocab.build(lines["train"], max_vocab)
        ids, unknown = {}, {}
        for split, f in SPLIT_FILES.items():
            ids[split], unknown[split] = vocab.encode(lines[split], root / f, "unk" if split == "train" else oov)
        if max_tokens:
            ids["train"] = ids["train"][:max_tokens]
        for split, arr in ids.items():
            if len(arr) < 2:
                raise InputError(f"{root / SPLIT_FILES[split]}: {len(arr)} token(s); a language model needs at least 2")
        return cls(root, vocab, ids, unknown)

    def unigram_log_probs(self, smoothing: float = 1.0) -> np.ndarray:
        """Log-probabilities of each word under the training split's unigram counts with
        additive (Laplace, ``smoothing`` = 1: add-one) smoothing, the baseline a language
        model must beat."""
        counts = np.bincount(self.ids["train"], minlength=len(self.vocab)).astype(np.float64) + smoothing
        return np.log(counts / counts.sum())

    def unigram_perplexity(self, split: str, smoothing: float = 1.0) -> float:
        """Perplexity of the smoothed unigram model on ``split`` (every token predicted)."""
        lp = self.unigram_log_probs(smoothing)
        return float(np.exp(-lp[self.ids[split]].mean()))


def batchify(ids: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` contiguous streams (rows x n // rows): row b continues where row b-1's text
    ends, so a recurrent state carried across windows reads running text."""
    n = len(ids) // rows
    if n < 2:
        raise ConfigError(f"batch size {rows}: a split of {len(ids)} tokens gives fewer than 2 tokens per row; "
                          "use a smaller batch size")
    return ids[:n * rows].reshape(rows, n)


def bptt_windows(n: int, bptt: int, rng: np.random.Generator | None, std: float = 5.0) -> list[tuple[int, int]]:
    """(start, length) windows covering positions ``0 .. n - 2`` of a batchified split
    (each window's targets are the next tokens). ``rng`` None: fixed length ``bptt``;
    else AWD-LSTM's draw: ``bptt`` (p 0.95) or ``bptt / 2``, plus N(0, std), at least 2
    and at most ``bptt + 20`` tokens."""
    out, i = [], 0
    while i < n - 1:
        if rng is None:
            seq = bptt
        else:
            base = bptt if rng.random() < 0.95 else bptt / 2
            seq = int(min(bptt + 20, max(2, round(rng.normal(base, std)))))
        seq = min(seq, n - 1 - i)
        out.append((i, seq))
        i += seq
    return out
