"""Offline bundle: export -> run run_bundle.py in a clean subprocess -> results file."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from hwnas.profilers.offline import export_bundle
from hwnas.profilers.timing import TimingProtocol


def test_bundle_round_trip(tmp_path: Path, tiny_nb201) -> None:
    bundle = tmp_path / "bundle"
    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=5, min_time_ms=0.2, time_budget_s=0.2, sessions=2)
    res = export_bundle(tiny_nb201, bundle, protocol=proto, networks=2, seed=3)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "hwnas-bundle" and manifest["version"] == 1
    assert manifest["space"] == "nb201" and manifest["space_options"]["channels"] == 4
    assert manifest["settings"] == {**proto.to_dict(), "estimator": "median"}  # what the bundle runner reports
    kinds = [it["kind"] for it in manifest["items"]]
    assert kinds.count("network") == 2 and kinds.count("primitive") == len(tiny_nb201.primitives())
    assert res["items"] == len(kinds) and not res["failed"]
    for it in manifest["items"]:
        assert (bundle / it["onnx"]).exists()
        assert ("key" in it and "primitive" in it) if it["kind"] == "primitive" else ("hash" in it and "network" in it)

    # The runner must work without hwnas: run it from the bundle with -I (isolated mode:
    # no cwd / user site on sys.path) as it would run on another machine.
    runner = (bundle / "run_bundle.py").read_text()
    assert "import hwnas" not in runner and "from hwnas" not in runner
    out = tmp_path / "results.csv"
    r = subprocess.run([sys.executable, "-I", str(bundle / "run_bundle.py"), "--device", "test-box", "--out", str(out)],
                       capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "# hwnas-results v1" and lines[1] == "# device: test-box"
    rows = list(csv.DictReader(lines[2:]))
    assert [row["name"] for row in rows] == [it["name"] for it in manifest["items"]]
    for row in rows:
        assert row["error"] == "" and float(row["latency_ms"]) > 0
        samples = [float(s) for s in row["samples_ms"].split()]
        assert len(samples) >= 6 and min(samples) > 0  # two sessions of at least 3 repeats


def test_export_run_ingest_round_trip(tmp_path: Path, tiny_nb201) -> None:
    """The whole offline path through the CLI: profile --export-only -> run_bundle.py
    (as another machine would) -> hwnas ingest -> a usable table and networks."""
    from hwnas.cli import main
    from hwnas.store import Store

    bundle = tmp_path / "bundle"
    opts = [a for k, v in tiny_nb201.options.__dict__.items() for a in ("--space-opt", f"{k}={v}")]
    assert main(["profile", "--space", "nb201", *opts, "--networks", "2", "--export-only", str(bundle),
                 "--min-repeats", "3", "--max-repeats", "5", "--time-budget", "0.2"]) == 0
    out = tmp_path / "results.csv"
    r = subprocess.run([sys.executable, "-I", str(bundle / "run_bundle.py"), "--device", "far-box", "--out", str(out)],
                       capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    store = tmp_path / "far.sqlite"
    assert main(["ingest", "--format", "csv", str(out), "--manifest", str(bundle / "manifest.json"),
                 "--device", "far-box", "--store", str(store)]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    with Store(store, create=False) as st:
        dev = st.find_device("far-box")
        assert dev["info"]["kind"] == "offline"
        table = st.table(dev["id"], "offline")
        prim_keys = {it["key"] for it in manifest["items"] if it["kind"] == "primitive"}
        assert set(table) == prim_keys and all(v > 0 for v in table.values())
        nets = st.query(kind="network", ok_only=True)
        assert {n["target"] for n in nets} == {it["hash"] for it in manifest["items"] if it["kind"] == "network"}
