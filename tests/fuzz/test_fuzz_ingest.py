"""Damaged vendor logs, manifests, mappings and power logs through ``hwnas ingest``:
one line naming the file, and the store untouched when a file is refused."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given

from .conftest import DATA, FUZZ, OK_INGEST, check, digest, fresh, mutated, run

FPGA = DATA / "fpga"
CASES = {
    "dnndk": FPGA / "dnndk_proxylessmobile05.log",
    "vaitrace-txt": FPGA / "vaitrace_txt_summary_vck190.txt",
    "awnas-yaml": FPGA / "profiled_blocks.yaml",
}


def _head(path: Path, lines: int = 40) -> bytes:
    return b"\n".join(path.read_bytes().splitlines()[:lines]) + b"\n"


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_ingest_damaged_logs(fuzz_root: Path, fmt: str) -> None:
    seed = _head(CASES[fmt], 60 if fmt == "awnas-yaml" else 40)

    @FUZZ
    @given(mutated(seed))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, f"ingest-{fmt}")
        f = d / CASES[fmt].name
        f.write_bytes(data)
        store = d / "s.sqlite"
        argv = ["ingest", "--format", fmt, f, "--device", "zcu102", "--store", store]
        res = run(argv)
        check(res, argv, [f.name], ok=OK_INGEST)
        if res.code == 2:
            assert not store.exists(), "a refused file created a store"

    inner()


def test_ingest_damaged_power_and_segments(fuzz_root: Path) -> None:
    log = CASES["dnndk"]
    pat, seg = _head(FPGA / "pat_datalog_example.csv", 20), _head(FPGA / "run_time_stamps.txt", 10)

    @FUZZ
    @given(mutated(pat), mutated(seg))
    def inner(pat_data: bytes, seg_data: bytes) -> None:
        d = fresh(fuzz_root, "power")
        p, s = d / "pat.csv", d / "segments.txt"
        p.write_bytes(pat_data)
        s.write_bytes(seg_data)
        argv = ["ingest", "--format", "dnndk", log, "--device", "zcu102", "--power", p, "--segments", s,
                "--clock-offset", "16", "--dry-run"]
        check(run(argv), argv, [p.name, s.name, log.name], ok=OK_INGEST)

    inner()


def _measurements(store: Path) -> set[tuple]:
    """Every stored measurement row (what an ingest must never lose or change)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as c:
        return set(c.execute("SELECT * FROM measurements").fetchall())


def test_ingest_damaged_manifest_and_mapping(seeds: dict[str, Path], fuzz_root: Path) -> None:
    """Into a store that already holds measurements: a refused file leaves it byte for byte
    as it was, an accepted one adds rows and loses or changes none."""
    bundle = fresh(fuzz_root, "bundle")
    assert run(["profile", "--space", "toy", "--space-opt", "n=2", "--space-opt", "k=2", "--export-only",
                bundle / "b"]).code == 0
    manifest = (bundle / "b" / "manifest.json").read_bytes()
    mapping = b"conv1: conv c3>16 32x32 k3 s1\nfc: {op: fc, c_in: 16, c_out: 10, h: 1, w: 1}\n"
    results = bundle / "results.csv"
    results.write_text("name,samples_ms\nnothing,1.0\n")
    seed_rows = _measurements(seeds["store"])

    @FUZZ
    @given(mutated(manifest), mutated(mapping))
    def inner(man: bytes, mp: bytes) -> None:
        d = fresh(fuzz_root, "man")
        m, y = d / "manifest.json", d / "mapping.yaml"
        m.write_bytes(man)
        y.write_bytes(mp)
        store = d / "s.sqlite"
        shutil.copy(seeds["store"], store)
        for argv in (["ingest", "--format", "csv", results, "--manifest", m, "--device", "x", "--store", store],
                     ["ingest", "--format", "dnndk", CASES["dnndk"], "--mapping", y, "--device", "x", "--store",
                      store]):
            before = digest(store)
            res = run(argv)
            check(res, argv, [m.name, y.name, results.name, CASES["dnndk"].name], ok=OK_INGEST)
            if res.code == 2:
                assert digest(store) == before, f"a refused ingest changed the store: {argv}"
            assert seed_rows <= _measurements(store), f"measurements lost or changed by {argv}"

    inner()
