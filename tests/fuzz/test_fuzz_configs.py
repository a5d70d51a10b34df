"""Damaged configs, run directories and architecture files through search, derive, train."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given

from .conftest import FUZZ, OK_DERIVE, OK_SEARCH, OK_TRAIN, check, digest, fresh, mutated, run


def test_search_config(seeds: dict[str, Path], fuzz_root: Path) -> None:
    @FUZZ
    @given(mutated(seeds["config"].read_bytes()))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "cfg")
        cfg = d / "search.yaml"
        cfg.write_bytes(data)
        argv = ["search", cfg, "--run-dir", d / "run"]
        check(run(argv), argv, [cfg.name, "search.yaml", "objective", "trainer", "controller", "search_space"],
              ok=OK_SEARCH)  # damage can leave a valid config (a changed number, swapped lines)

    inner()


@pytest.mark.parametrize("target", ["checkpoint.json", "config.yaml"])
def test_derive_and_resume_damaged_run_dir(seeds: dict[str, Path], fuzz_root: Path, target: str) -> None:
    @FUZZ
    @given(mutated((seeds["run_dir"] / target).read_bytes()))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "run")
        rd = d / "run"
        shutil.copytree(seeds["run_dir"], rd)
        (rd / target).write_bytes(data)
        argv = ["derive", rd, "--top", "2", "--out", d / "best.yaml"]
        check(run(argv), argv, [target, str(rd)], ok=OK_DERIVE)
        argv = ["search", seeds["config"], "--run-dir", rd, "--steps", "3"]
        if target == "checkpoint.json":
            res = run(argv)
            check(res, argv, [target, str(rd)], ok=OK_SEARCH)
            if res.code == 0:  # resumed: only from a checkpoint that still is this run's
                assert "resumed at step" in res.out or data == b"", res.out[:300]

    inner()


def test_train_damaged_arch_file(seeds: dict[str, Path], fuzz_root: Path) -> None:
    @FUZZ
    @given(mutated(seeds["arch"].read_bytes()))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "arch")
        arch = d / "best.yaml"
        arch.write_bytes(data)
        argv = ["train", seeds["train_config"], "--arch", arch, "--out", d / "final", "--epochs", "1"]
        check(run(argv, timeout_s=120), argv, [arch.name], ok=OK_TRAIN)

    inner()


def test_train_damaged_checkpoint(seeds: dict[str, Path], fuzz_root: Path) -> None:
    base = fresh(fuzz_root, "ckpt-base")
    assert run(["train", seeds["train_config"], "--arch", seeds["arch"], "--out", base, "--epochs", "2",
                "--stop-after", "1"]).code == 0
    ckpt = (base / "checkpoint.pt").read_bytes()

    @FUZZ
    @given(mutated(ckpt))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "ckpt")
        (d / "checkpoint.pt").write_bytes(data)
        argv = ["train", seeds["train_config"], "--arch", seeds["arch"], "--out", d, "--epochs", "2", "--resume"]
        check(run(argv, timeout_s=120), argv, ["checkpoint.pt"], ok=OK_TRAIN if data == ckpt else None)

    inner()


@pytest.mark.parametrize("kind", ["dir", "missing_parent", "file_as_parent"])
def test_output_paths_of_every_writer(seeds: dict[str, Path], tmp_path: Path, kind: str) -> None:
    """--out / --run-dir at a folder, under a missing folder, or under a file: one line, before any work."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    target = {"dir": tmp_path, "missing_parent": tmp_path / "no" / "such" / "x",
              "file_as_parent": blocker / "x"}[kind]
    before = digest(seeds["store"])
    cases = [["gen-config", "--out", target],
             ["derive", seeds["run_dir"], "--out", target],
             ["store", "export", "--store", seeds["store"], "--out", target]]
    if kind != "dir":  # folders are the right kind for these
        cases += [["fit-cost", "--store", seeds["store"], "--device", "cpu", "--backend", "fake", "--model", "lut",
                   "--out", target],
                  ["search", seeds["config"], "--run-dir", target],
                  ["train", seeds["train_config"], "--arch", seeds["arch"], "--out", target],
                  ["profile", "--space", "toy", "--export-only", target]]
    for argv in cases:
        res = run(argv)
        assert res.code == 2, f"{argv}: exit {res.code}"
        check(res, argv, [str(target)])
    assert digest(seeds["store"]) == before
