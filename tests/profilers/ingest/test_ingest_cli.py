"""`hwnas ingest` / `hwnas export-awnas` end to end, through hwnas.cli.main."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas import registry
from hwnas.cli import main
from hwnas.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "fpga"


def test_formats_are_registered() -> None:
    names = {e.name for e in registry.list("ingest_format")}
    assert {"dnndk", "vaitrace-txt", "vaitrace-csv", "awnas-yaml", "csv", "json"} <= names


def test_cli_ingest_summary_json_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "s.sqlite")
    assert main(["ingest", "--format", "awnas-yaml", str(DATA / "profiled_blocks.yaml"), "--device",
                 "zcu102-dpu-b4096", "--store", store, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] == 92 and out["with_energy"] == 10 and out["files"][0]["skipped"] == 19
    assert main(["ingest", "--format", "dnndk", str(DATA / "dnndk_proxylessmobile05.log"), "--device",
                 "zcu102-dpu-b4096", "--store", store]) == 0
    text = capsys.readouterr().out
    (row,) = [line.split() for line in text.splitlines() if line.startswith("dnndk_proxylessmobile05.log")]
    assert row == ["dnndk_proxylessmobile05.log", "dnndk", "42", "42", "42", "0", "0", "0"]  # items .. skipped
    dest = tmp_path / "out.yaml"
    assert main(["export-awnas", "--store", store, "--device", "zcu102-dpu-b4096", "--backend", "awnas",
                 "--out", str(dest)]) == 0
    assert "wrote 92 aw_nas entries (10 with power)" in capsys.readouterr().out


def test_cli_rejects_bad_file_and_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "dnndk_x.log"
    bad.write_text((DATA / "dnndk_proxylessmobile05.log").read_text().replace("0.063", "abc"))
    store = tmp_path / "s.sqlite"
    rc = main(["ingest", "--format", "dnndk", str(DATA / "dnndk_proxylessmobile05.log"), str(bad), "--device", "z",
               "--store", str(store)])
    assert rc == 2
    assert "dnndk_x.log:6: expected 6 numeric columns after the name, got 'abc'" in capsys.readouterr().err
    with Store(store) as st:
        assert st.summary()["measurements"] == 0


@pytest.mark.parametrize("cmd", ["ingest", "export-awnas"])
def test_help_has_example(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    assert "example:" in capsys.readouterr().out


def test_rejected_file_creates_no_store(tmp_path) -> None:
    from hwnas.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text("layer,x\n")
    store = tmp_path / "never.sqlite"
    assert main(["ingest", "--format", "csv", str(bad), "--device", "box", "--store", str(store)]) == 2
    assert not store.exists()
