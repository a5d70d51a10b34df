"""The benchmark scripts `make bench` runs: each answers ``--help``, and each that reads a
data set says ``skipped: <reason>`` and exits 0 when its data are absent (a fresh clone
without ``../shared``), instead of failing the whole ``make bench``.

All scripts run in one child process (``runpy``, as ``python bench/X.py`` would), so the
imports are paid once; nothing is mocked.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py"))

_DRIVER = r'''
import contextlib, io, json, runpy, sys
out = {}
for script, args in json.loads(sys.argv[1]):
    buf, code = io.StringIO(), 0
    sys.argv = [script] + args
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out[" ".join([script] + args)] = [code, buf.getvalue()]
print(json.dumps(out))
'''


def _run(cases: list[tuple[str, list[str]]]) -> dict[str, tuple[int, str]]:
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {k: (v[0], v[1]) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


@pytest.mark.timeout(600)
def test_every_bench_script_has_help() -> None:
    assert len(SCRIPTS) >= 16
    res = _run([(f"bench/{s}", ["--help"]) for s in SCRIPTS])
    for s in SCRIPTS:
        code, text = res[f"bench/{s} --help"]
        assert code == 0 and text.startswith("usage: "), (s, text[-500:])


@pytest.mark.timeout(600)
def test_missing_data_is_a_skip_not_a_failure(tmp_path: Path) -> None:
    gone = str(tmp_path / "absent")
    out = str(tmp_path / "out.json")
    cases = [
        ("bench/nb201_devices.py", ["--csv", gone + ".csv", "--out", out]),
        ("bench/nb201_search.py", ["--accuracy", gone + ".csv", "--latency", gone + "2.csv", "--out", out,
                                   "--png", str(tmp_path / "p.png")]),
        ("bench/transfer.py", ["--shared", gone, "--out", out]),
        ("bench/zero_cost.py", ["--accuracy", gone + ".csv", "--out", out, "--scores", str(tmp_path / "s.csv")]),
        ("bench/data_pipeline.py", ["--folder", gone]),
        ("bench/any_model.py", ["report", "--store", gone + ".sqlite", "--zoo-dir", gone]),
    ]
    res = _run(cases)
    for script, args in cases:
        code, text = res[" ".join([script] + args)]
        lines = text.strip().splitlines()
        assert code == 0 and len(lines) == 1 and lines[0].startswith("skipped: ") and "absent" in lines[0], \
            (script, text[-500:])
    assert not Path(out).exists() and list(tmp_path.iterdir()) == []  # nothing written
