"""Write this folder's PTB-style corpus from the tiny-shakespeare text (see README.md).

Usage: ``python prepare.py INPUT.txt`` (INPUT: ``data/tinyshakespeare/input.txt`` of
github.com/karpathy/char-rnn). Deterministic: the same input gives the same files.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
#: Tokens per split, taken in this order from the start of the text (no overlap).
SIZES = {"train": 40000, "valid": 5000, "test": 5000}
MIN_COUNT = 3  # training words seen fewer times become <unk>, as in Mikolov's PTB


def sentences(text: str) -> list[list[str]]:
    """Lower-cased words of each spoken line; speaker headings ("First Citizen:") dropped."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or (s.endswith(":") and len(s.split()) <= 4):
            continue
        words = WORD.findall(s.lower())
        if words:
            out.append(words)
    return out


def main(src: Path, dst: Path) -> None:
    lines = sentences(src.read_text(encoding="utf-8"))
    splits: dict[str, list[list[str]]] = {k: [] for k in SIZES}
    it = iter(lines)
    for name, size in SIZES.items():
        n = 0
        while n < size:
            line = next(it)
            splits[name].append(line)
            n += len(line) + 1  # + <eos>
    counts = Counter(w for line in splits["train"] for w in line)
    vocab = {w for w, c in counts.items() if c >= MIN_COUNT}
    for name, part in splits.items():
        text = "\n".join(" " + " ".join(w if w in vocab else "<unk>" for w in line) + " " for line in part)
        (dst / f"{name}.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent)
