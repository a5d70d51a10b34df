from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from hwnas.errors import StoreError, ValidationError
from hwnas.primitives import Primitive
from hwnas.store import SCHEMA_VERSION, Measurement, Store

SETTINGS = {"warmup": 1, "repeats": 3, "threads": 1, "batch": 1}


def _m(target: str, ms: float, **kw) -> Measurement:
    return Measurement("primitive", target, "fake", SETTINGS, (ms, ms * 1.1, ms * 0.9), **kw)


def test_roundtrip_resume_and_table(store_path, cpu_device, tiny_net):
    with Store(store_path) as st:
        dev = st.add_device(cpu_device)
        assert st.add_device(cpu_device) == dev  # same fingerprint, same id
        st.add_network(tiny_net, arch={"a": 1})
        keys = [p.key for p in tiny_net.nodes]
        st.add_measurements(dev, [_m(k, 1.0 + i) for i, k in enumerate(keys[:2])])
        st.add_measurement(dev, Measurement("primitive", keys[2], "fake", SETTINGS, error="compile error: x"))
        assert st.measured(dev, "fake", SETTINGS, "primitive") == set(keys[:3])
        assert st.measured(dev, "fake", SETTINGS, "primitive", include_failed=False) == set(keys[:2])
        assert st.measured(dev, "fake", {**SETTINGS, "threads": 2}, "primitive") == set()
        # append-only: a re-measurement adds a row, the table takes the newest
        st.add_measurement(dev, _m(keys[0], 5.0))
        table = st.table(dev, "fake")
        assert table == {keys[0]: 5.0, keys[1]: 2.0}  # the failed one is not in the table
        rows = st.query(kind="primitive")
        assert len(rows) == 4 and rows[2]["error"] == "compile error: x" and rows[2]["median_ms"] is None
        assert rows[0]["samples"] == [1.0, 1.1, 0.9]
        assert st.network(tiny_net.hash) == tiny_net
        assert st.primitive(keys[1]) == tiny_net.nodes[1]


def test_failed_measurement_is_data_not_sentinel():
    with pytest.raises(ValidationError, match="no samples and no error"):
        Measurement("primitive", "x", "fake", SETTINGS)
    with pytest.raises(ValidationError, match="bad sample"):
        Measurement("primitive", "x", "fake", SETTINGS, (-1.0,))
    with pytest.raises(ValidationError, match="block measurement needs"):
        Measurement("block", "x", "fake", SETTINGS, (1.0,))


def test_export_csv_and_dataframe(store_path, cpu_device, tmp_path):
    with Store(store_path) as st:
        dev = st.add_device(cpu_device)
        st.add_primitive(Primitive("conv", 3, 8, 8, 8))
        st.add_measurement(dev, _m("conv c3>8 8x8 k1 s1", 2.0))
        out = tmp_path / "x.csv"
        assert st.export_csv(out) == 1
        text = out.read_text().splitlines()
        assert text[0].startswith("id,kind,target") and "conv c3>8 8x8 k1 s1" in text[1]
        df = st.to_dataframe(kind="primitive")
        assert list(df["median_ms"]) == [2.0]


def test_missing_store_is_one_line(tmp_path):
    with pytest.raises(StoreError, match="no cost store at"):
        Store(tmp_path / "nope.sqlite", create=False)


def test_newer_schema_refused(store_path):
    Store(store_path).close()
    con = sqlite3.connect(store_path)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    newer = rf"schema version {SCHEMA_VERSION + 1} is newer than this hwnas supports \({SCHEMA_VERSION}\)"
    with pytest.raises(StoreError, match=newer):
        Store(store_path)
    with pytest.raises(StoreError, match=newer):
        Store(store_path, readonly=True)


def test_v1_store_migrates_to_rules_table(store_path, cpu_device):
    """A store written by schema 1 (no rules table) opens, gains the table, keeps its rows."""
    from hwnas.store.schema import _SCHEMA_V1

    con = sqlite3.connect(store_path)
    con.executescript(_SCHEMA_V1)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO devices (name, fingerprint, info, created) VALUES ('old', 'fp', '{}', 'then')")
    con.commit()
    con.close()
    with Store(store_path) as st:
        assert st.schema_version == SCHEMA_VERSION == 4
        assert [d["name"] for d in st.devices()] == ["old"]
        dev = st.add_device(cpu_device)
        assert st.rules(dev, "onnxruntime", "fusion") is None
        st.add_rules(dev, "onnxruntime", "fusion", {"pairs": {"conv>relu": True}}, {"share": 0.5})
        st.add_rules(dev, "onnxruntime", "fusion", {"pairs": {"conv>relu": False}}, {"share": 0.5})
        got = st.rules(dev, "onnxruntime", "fusion")
        assert got["data"] == {"pairs": {"conv>relu": False}} and got["settings"] == {"share": 0.5}


def test_foreign_sqlite_file_refused(tmp_path):
    p = tmp_path / "other.sqlite"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not an hwnas cost store"):
        Store(p)
    (tmp_path / "junk.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable"):
        Store(tmp_path / "junk.sqlite")


WRITER = textwrap.dedent("""
    import sys, time
    from hwnas.store import Store, Device, Measurement
    path, tag, batches, size, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    hold = int(sys.argv[6]) if len(sys.argv) > 6 else -1  # this batch stops half written, until killed
    st = Store(path)
    dev = st.add_device(Device(name="w", cores=2))
    for b in range(batches):
        with st.transaction():
            for i in range(size):
                st.add_measurement(dev, Measurement("primitive", f"{tag}-{b}-{i}", "fake", {"t": 1}, (1.0 + i,)))
                if pause:
                    time.sleep(pause)
                if b == hold and i == size // 2:
                    print(f"holding {b}", flush=True)
                    sys.stdin.read()  # the test kills us here, inside the transaction
        print(f"committed {b}", flush=True)
""")


def test_sigkill_mid_batch_keeps_committed_rows(store_path, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    # 50 rows per batch; the writer stops half-way through batch 2 and says so: kill it there.
    proc = subprocess.Popen([sys.executable, str(script), str(store_path), "k", "100", "50", "0", "2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline() for _ in range(3)]
    assert lines == ["committed 0\n", "committed 1\n", "holding 2\n"], lines
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    with Store(store_path) as st:
        assert st.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        targets = [r["target"] for r in st.query()]
    batches = {}
    for t in targets:
        _, b, _ = t.split("-")
        batches[int(b)] = batches.get(int(b), 0) + 1
    # every batch in the store is complete (50 rows); at least the acknowledged ones are there
    assert batches == {0: 50, 1: 50}  # both committed batches whole, nothing of the half-written one


def test_two_writers_at_once(store_path, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(store_path), tag, "20", "10", "0.001"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Store(store_path) as st:
        rows = st.query()
        assert len(rows) == 400
        assert {r["target"][0] for r in rows} == {"a", "b"}
        assert len(st.devices()) == 1  # the same fingerprint from both processes
