"""Damaged vendor logs, manifests, mappings and power logs through ``hwnas ingest``:
one line naming the file, and the store untouched when a file is refused."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from .conftest import DATA, FUZZ, check, digest, fresh, mutated, run

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
        check(res, argv, [f.name])
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
        check(run(argv), argv, [p.name, s.name, log.name])

    inner()


def test_ingest_damaged_manifest_and_mapping(seeds: dict[str, Path], fuzz_root: Path) -> None:
    bundle = fresh(fuzz_root, "bundle")
    assert run(["profile", "--space", "toy", "--space-opt", "n=2", "--space-opt", "k=2", "--export-only",
                bundle / "b"]).code == 0
    manifest = (bundle / "b" / "manifest.json").read_bytes()
    mapping = b"conv1: conv c3>16 32x32 k3 s1\nfc: {op: fc, c_in: 16, c_out: 10, h: 1, w: 1}\n"
    results = bundle / "results.csv"
    results.write_text("name,samples_ms\nnothing,1.0\n")

    @FUZZ
    @given(mutated(manifest), mutated(mapping))
    def inner(man: bytes, mp: bytes) -> None:
        d = fresh(fuzz_root, "man")
        m, y = d / "manifest.json", d / "mapping.yaml"
        m.write_bytes(man)
        y.write_bytes(mp)
        store = d / "s.sqlite"
        for argv in (["ingest", "--format", "csv", results, "--manifest", m, "--device", "x", "--store", store],
                     ["ingest", "--format", "dnndk", CASES["dnndk"], "--mapping", y, "--device", "x", "--dry-run"]):
            res = run(argv)
            check(res, argv, [m.name, y.name, results.name, CASES["dnndk"].name])

    inner()
    assert digest(seeds["store"])
