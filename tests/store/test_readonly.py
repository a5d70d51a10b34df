"""Read-only commands stay read-only: a store opened for reading is never created,
migrated or switched to WAL, and a foreign, empty or damaged file is one line on stderr
and left byte-identical."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import NamedTuple

import pytest

from hwnas.cli import main
from hwnas.errors import StoreError
from hwnas.store import Measurement, Store
from hwnas.store.schema import _SCHEMA_V1

SETTINGS = {"timing": {"warmup": 1}}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Result(NamedTuple):
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def hwnas(capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process (an exception other than the one-line error fails the test)."""
    def run(*args: str) -> Result:
        rc = main(list(args))
        out, err = capsys.readouterr()
        return Result(args, rc, out, err)
    return run


def _filled(path: Path, cpu_device, tiny_net, *, n_nets: int = 5) -> None:
    """A small real store: one network measured end to end and a primitive table."""
    with Store(path) as st:
        dev = st.add_device(cpu_device)
        st.add_network(tiny_net)
        for i, p in enumerate(tiny_net.nodes):
            st.add_measurement(dev, Measurement("primitive", p.key, "fake", SETTINGS, (1.0 + i, 1.1 + i)))
        st.add_measurement(dev, Measurement("network", tiny_net.hash, "fake", SETTINGS, (3.0, 3.3)))


def _foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    con.commit()
    con.close()


def _v1_store(path: Path, *, drop: str | None = None, meta: str | None = "1", samples: str = "[1.0, 2.0]") -> None:
    """A schema-v1 store written by hand (as an older hwnas wrote it), optionally damaged."""
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_V1)
    if meta is not None:
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (meta,))
    con.execute("INSERT INTO devices VALUES (1, 'cpu', 'abc', '{}', 'now')")
    con.execute("INSERT INTO measurements (kind, target, device_id, backend, settings, settings_hash, samples,"
                " median_ms, n, versions, created) VALUES ('primitive', 'p', 1, 'fake', '{}', 'h', ?, 1.5, 2,"
                " '{}', 'now')", (samples,))
    if drop:
        con.execute(f"DROP TABLE {drop}")
    con.commit()
    con.close()


@pytest.mark.parametrize("kind", ["empty", "foreign", "junk", "no-meta-row", "bad-meta", "no-measurements",
                                  "bad-samples"])
def test_damaged_or_foreign_files_are_refused_and_untouched(tmp_path: Path, kind: str, hwnas) -> None:
    p = tmp_path / "x.sqlite"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "foreign":
        _foreign(p)
    elif kind == "junk":
        p.write_bytes(b"definitely not sqlite\n" * 50)
    elif kind == "no-meta-row":
        _v1_store(p, meta=None)
    elif kind == "bad-meta":
        _v1_store(p, meta="v-one")
    elif kind == "no-measurements":
        _v1_store(p, drop="measurements")
    else:
        _v1_store(p, samples="[1.0, 2.")
    before = _digest(p)
    runs = [hwnas("store", "ls", "--store", str(p)), hwnas("store", "show", "--store", str(p)),
            hwnas("store", "export", "--store", str(p), "--out", str(tmp_path / "out.csv")),
            hwnas("fit-cost", "--store", str(p), "--device", "cpu", "--backend", "fake")]
    if kind == "bad-samples":  # a readable store whose rows are damaged: ls still summarises
        assert runs[0].returncode == 0, runs[0].stderr
        runs = runs[1:]
    for r in runs:
        assert r.returncode == 2, (r.args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
        assert str(p) in r.stderr
    assert _digest(p) == before
    assert not (tmp_path / "out.csv").exists()  # nothing written when the store cannot be read
    if kind in ("empty", "foreign", "junk"):
        assert not (tmp_path / "x.sqlite-wal").exists()  # never switched to WAL
    if kind == "foreign":
        con = sqlite3.connect(p)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        con.close()


def test_writers_refuse_foreign_files_without_switching_them_to_wal(tmp_path: Path) -> None:
    p = tmp_path / "photos.db"
    _foreign(p)
    before = _digest(p)
    with pytest.raises(StoreError, match="not an hwnas cost store"):
        Store(p)
    assert _digest(p) == before
    con = sqlite3.connect(p)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_reading_commands_leave_a_real_store_byte_identical(tmp_path: Path, cpu_device, tiny_net, hwnas) -> None:
    p = tmp_path / "s.sqlite"
    _filled(p, cpu_device, tiny_net)
    before = _digest(p)
    for args in (["store", "ls"], ["store", "show", "--all"], ["store", "export", "--out", str(tmp_path / "o.csv")]):
        r = hwnas(*args, "--store", str(p), "--json")
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.csv").read_text().count("\n") == 1 + len(tiny_net.nodes) + 1
    # fit-cost reads (and then refuses: one network is not enough to fit) without writing
    r = hwnas("fit-cost", "--store", str(p), "--device", "test-cpu", "--backend", "fake")
    assert r.returncode == 2 and "only 1 usable network" in r.stderr
    assert _digest(p) == before
    with Store(p, readonly=True) as st, pytest.raises(StoreError, match="read-only"):
        st.add_device(cpu_device)


def test_older_store_is_read_without_migrating_and_migrated_by_a_writer(tmp_path: Path) -> None:
    p = tmp_path / "v1.sqlite"
    _v1_store(p)
    before = _digest(p)
    with Store(p, readonly=True) as st:
        assert st.schema_version == 1
        (row,) = st.query()
        assert row["latency_ms"] == 1.5 and row["flagged"] is None and row["evidence"] == {}
        assert st.summary()["flagged"] == 0
        assert st.table(1, "fake") == {"p": 1.5}
    assert _digest(p) == before
    with Store(p) as st:  # a writer migrates v1 -> current, keeping the row
        assert st.schema_version > 1
        assert st.query()[0]["median_ms"] == 1.5
        cols = {r[1] for r in st.conn.execute("PRAGMA table_info(measurements)")}
        assert {"latency_ms", "flagged", "evidence"} <= cols
        assert "claims" in {r[0] for r in st.conn.execute("SELECT name FROM sqlite_master")}


def test_corrupt_values_are_one_line_errors(tmp_path: Path, cpu_device, tiny_net) -> None:
    p = tmp_path / "s.sqlite"
    _filled(p, cpu_device, tiny_net)
    con = sqlite3.connect(p)
    con.execute("UPDATE measurements SET median_ms='fast' WHERE id=1")
    con.execute("UPDATE networks SET spec=?", (json.dumps({"nodes": "x"}),))
    con.commit()
    con.close()
    with Store(p, readonly=True) as st:
        with pytest.raises(StoreError, match="measurement 1: median_ms is not a number"):
            st.query()
        with pytest.raises(StoreError, match=f"network {tiny_net.hash}"):
            st.network(tiny_net.hash)


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    for ro in (True, False):
        with pytest.raises(StoreError, match="not a file"):
            Store(tmp_path, readonly=ro)
