"""Damaged cost stores through every command that only reads them: one line, and the
file is left byte for byte as it was."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import FUZZ, OK_STORE, check, digest, fresh, run

READERS = [
    ["store", "ls"],
    ["store", "show", "--limit", "5"],
    ["fit-cost", "--device", "cpu", "--backend", "fake", "--model", "lut,linear1"],
]


@st.composite
def damaged_store(draw, seed: bytes) -> bytes:
    """SQLite pages with bytes overwritten or cut off (header, schema, data pages)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["overwrite", "truncate", "zero_page"]))
        if kind == "overwrite" and data:
            pos = draw(st.integers(0, len(data) - 1))
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos:pos + len(chunk)] = chunk
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif kind == "zero_page" and len(data) >= 4096:
            page = draw(st.integers(0, len(data) // 4096 - 1))
            data[page * 4096:(page + 1) * 4096] = bytes(4096)
    return bytes(data)


@pytest.mark.parametrize("reader", READERS, ids=lambda r: " ".join(r[:2]))
def test_readers_on_damaged_store(seeds: dict[str, Path], fuzz_root: Path, reader: list[str]) -> None:
    src = seeds["store"]

    @FUZZ
    @given(damaged_store(src.read_bytes()))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "store")
        store = d / "s.sqlite"
        store.write_bytes(data)
        before = digest(store)
        argv = [*reader, "--store", store] if reader[0] == "store" else [reader[0], "--store", store, *reader[1:]]
        check(run(argv), argv, [store.name], ok=OK_STORE[reader[1] if reader[0] == "store" else reader[0]])
        assert digest(store) == before, f"{argv} changed the store it only reads"
        assert not (d / "s.sqlite-wal").exists() or (d / "s.sqlite-wal").stat().st_size == 0

    inner()


def test_readers_on_foreign_files(seeds: dict[str, Path], tmp_path: Path) -> None:
    """A 0-byte file, a text file and a foreign SQLite database are refused and left alone."""
    import sqlite3

    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    text = tmp_path / "text.sqlite"
    text.write_text("hello")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as c:
        c.execute("CREATE TABLE t (x)")
    for path in (empty, text, foreign):
        before = digest(path)
        for reader in READERS:
            argv = [*reader, "--store", path] if reader[0] == "store" else [reader[0], "--store", path, *reader[1:]]
            res = run(argv)
            assert res.code == 2, argv
            check(res, argv, [path.name])
            assert digest(path) == before
    shutil.rmtree(tmp_path)
