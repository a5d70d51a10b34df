from __future__ import annotations

import json
import re
import subprocess
import sys

from hwnas import __version__
from hwnas.cli import main
from hwnas.store import Measurement, Store


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas.cli", *args], capture_output=True, text=True, timeout=120)


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert __version__ in capsys.readouterr().out


def test_registry_lists_components(capsys):
    assert main(["registry", "search_space"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:]]  # below the header and its rule
    assert {"mbv2", "nb201", "fbnet"} <= {r[1] for r in rows} and {r[0] for r in rows} == {"search_space"}
    assert main(["registry", "search_space", "nb2*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["nb201"] and "channels" in rows[0]["options"]


def test_store_ls_missing_file_is_one_line(tmp_path):
    r = run_cli("store", "ls", "--store", str(tmp_path / "missing.sqlite"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no cost store at" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "missing.sqlite").exists()  # a read-only command creates nothing


def test_store_ls_show_export(tmp_path, cpu_device, tiny_net, capsys):
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        dev = st.add_device(cpu_device)
        st.add_network(tiny_net)
        st.add_measurement(dev, Measurement("primitive", tiny_net.nodes[0].key, "fake", {"r": 1}, (1.0, 2.0, 3.0)))
        st.add_measurement(dev, Measurement("network", tiny_net.hash, "fake", {"r": 1}, error="timeout after 5 s"))
    assert main(["store", "ls", "--store", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["measurements"] == 2 and s["failed"] == 1 and s["networks"] == 1
    assert main(["store", "show", "--store", str(path), "--kind", "primitive"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if tiny_net.nodes[0].key in line]
    assert re.search(r"(^|\s)2(\.0+)?(\s|$)", row.replace(tiny_net.nodes[0].key, "")), row  # the median of 1, 2, 3
    csv_path = tmp_path / "out.csv"
    assert main(["store", "export", "--store", str(path), "--out", str(csv_path)]) == 0
    assert len(csv_path.read_text().strip().splitlines()) == 3


def test_every_subcommand_help_has_an_example():
    from hwnas.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = []
    for name, p in sub.choices.items():
        if name == "store":
            inner = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
            missing += [f"store {n}" for n, q in inner.choices.items() if "example:" not in (q.epilog or "")]
        if "example:" not in (p.epilog or ""):
            missing.append(name)
    assert not missing, missing
