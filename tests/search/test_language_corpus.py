"""PTB-layout corpora: vocabulary on train, the OOV policy, bad input in one line, batching."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import ConfigError, InputError
from hwnas.search.datasets.text import TextCorpusDataset
from hwnas.search.language.corpus import Corpus, batchify, bptt_windows

SHAKESPEARE = Path(__file__).resolve().parents[1] / "data" / "shakespeare_ptb"


def write(root: Path, train: str = "a b a c\nb a\n", valid: str = "a b\n", test: str = "c a\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        if text is not None:
            (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg


def test_vocabulary_comes_from_train_and_every_line_ends_with_eos(tmp_path: Path) -> None:
    c = Corpus.load(write(tmp_path))
    assert c.vocab.words[:2] == ("a", "<eos>")  # by frequency: a x3, <eos> x2, b x2 (ties by spelling)
    assert set(c.vocab.words) == {"a", "b", "c", "<eos>", "<unk>"}
    eos = c.vocab.ids["<eos>"]
    assert c.ids["train"].tolist() == [c.vocab.ids[w] for w in "a b a c".split()] + [eos] + \
        [c.vocab.ids["b"], c.vocab.ids["a"], eos]


def test_unknown_test_token_is_mapped_to_unk_and_counted(tmp_path: Path) -> None:
    c = Corpus.load(write(tmp_path, test="a zebra zebra\n"))
    assert c.oov == {"train": 0, "valid": 0, "test": 2}
    assert c.ids["test"].tolist().count(c.vocab.unk) == 2
    assert len(c.ids["test"]) == 4  # nothing dropped: a, <unk>, <unk>, <eos>


def test_unknown_test_token_is_refused_under_oov_error(tmp_path: Path) -> None:
    root = write(tmp_path, test="a b\nc zebra\n")
    with pytest.raises(InputError) as exc:
        Corpus.load(root, oov="error")
    msg = one_line(exc)
    assert str(root / "test.txt") in msg and "line 2" in msg and "'zebra'" in msg


@pytest.mark.parametrize("text", ["", "\n  \n\t\n"])
def test_empty_corpus_is_one_line_naming_the_file(tmp_path: Path, text: str) -> None:
    root = write(tmp_path, valid=text)
    with pytest.raises(InputError) as exc:
        Corpus.load(root)
    assert str(root / "valid.txt") in one_line(exc) and "empty corpus" in str(exc.value)


def test_missing_split_is_one_line_naming_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, test=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as exc:
        Corpus.load(root)
    msg = one_line(exc)
    assert str(root / "test.txt") in msg and "not found" in msg
    with pytest.raises(ConfigError, match="is not a folder"):
        Corpus.load(tmp_path / "nowhere")


def test_non_utf8_file_is_one_line(tmp_path: Path) -> None:
    root = write(tmp_path)
    (root / "train.txt").write_bytes(b"a b \xff\xfe c\n")
    with pytest.raises(InputError) as exc:
        Corpus.load(root)
    assert str(root / "train.txt") in one_line(exc)


def test_max_vocab_keeps_the_most_frequent_words(tmp_path: Path) -> None:
    c = Corpus.load(write(tmp_path), max_vocab=3)
    assert set(c.vocab.words) == {"a", "<eos>", "<unk>"}
    assert c.oov["train"] == 3  # b, c, b became <unk> (counted, not an error, in train)


def test_unigram_perplexity_is_add_one_smoothed(tmp_path: Path) -> None:
    c = Corpus.load(write(tmp_path))
    counts = {w: 1 for w in c.vocab.words}  # add-one
    for w in "a b a c <eos> b a <eos>".split():
        counts[w] += 1
    total = sum(counts.values())
    want = math.exp(-np.mean([math.log(counts[w] / total) for w in "c a <eos>".split()]))
    assert c.unigram_perplexity("test") == pytest.approx(want)


def test_batchify_and_windows_cover_each_row_once() -> None:
    rows = batchify(np.arange(103), 4)
    assert rows.shape == (4, 25) and rows[1, 0] == 25  # row b continues after row b-1
    for rng in (None, np.random.default_rng(0)):
        w = bptt_windows(25, 7, rng, std=2.0)
        assert w[0][0] == 0 and sum(n for _, n in w) == 24
        assert all(a + n == b for (a, n), (b, _) in zip(w, w[1:]))
    assert {n for _, n in bptt_windows(1000, 7, None)[:-1]} == {7}
    lengths = [n for _, n in bptt_windows(100_000, 35, np.random.default_rng(1))[:-1]]
    assert 2 <= min(lengths) and max(lengths) <= 55 and 33 < np.mean(lengths) < 35  # 5% of windows around 17.5
    with pytest.raises(ConfigError, match="smaller batch size"):
        batchify(np.arange(10), 8)


def test_dataset_batches_are_windows_and_next_tokens() -> None:
    ds = TextCorpusDataset(TextCorpusDataset.Options(root=SHAKESPEARE, bptt=10), seed=0).prepare()
    assert ds.num_classes == 1407 and ds.size("test") == 5003
    loader = ds.loader("valid", batch_size=4, shuffle=False)
    batches = list(loader)
    assert len(batches) == len(loader) and all(x.shape[0] == 4 for x, _ in batches)
    x, y = batches[0]
    assert x.shape == (4, 10) and y.shape == (40,) and (y.view(4, 10)[:, :-1] == x[:, 1:]).all()
    shuffled = [x.shape[1] for x, _ in ds.loader("train", batch_size=4, shuffle=True, seed=2)]
    assert len(set(shuffled)) > 3  # variable-length BPTT in training
