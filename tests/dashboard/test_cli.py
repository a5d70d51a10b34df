"""``hwnas dashboard`` refuses bad input in one line before it listens."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest.importorskip("flask")

from hwnas.cli import main  # noqa: E402


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("hwnas dashboard: error: ")
    return err


def test_missing_runs_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, ["dashboard", "--runs", str(tmp_path / "nope"), "--port", "0"])
    assert str(tmp_path / "nope") in err and "no such folder" in err


def test_store_that_is_not_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.sqlite"
    bad.write_text("these are my notes, not a database\n" * 20)
    err = one_line_error(capsys, ["dashboard", "--runs", str(tmp_path), "--store", str(bad), "--port", "0"])
    assert str(bad) in err and "store" in err
    assert bad.read_text().startswith("these are my notes")  # read-only: untouched
    err = one_line_error(capsys, ["dashboard", "--runs", str(tmp_path), "--store", str(tmp_path / "none.sqlite")])
    assert "none.sqlite" in err and not (tmp_path / "none.sqlite").exists()


def test_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        err = one_line_error(capsys, ["dashboard", "--runs", str(tmp_path), "--port", str(port)])
    assert f"--port {port}: already in use" in err


def test_binds_this_machine_only_by_default(tmp_path: Path) -> None:
    from hwnas.cli import build_parser
    from hwnas.dashboard.server import make_server

    args = build_parser().parse_args(["dashboard", "--runs", str(tmp_path)])
    assert args.host == "127.0.0.1"
    srv = make_server(tmp_path, None, args.host, 0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()
