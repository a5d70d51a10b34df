"""The hostile-user harness: run a CLI command in-process on damaged inputs and check
that it fails the way a user deserves — exit code 2, one bounded line on stderr that
names the file, no traceback, no hang, and no change to stores it only reads — or, only
where the call site says accepting that input is documented behaviour, succeeds with the
documented output (and any dropped data counted in it or in a logged warning).

Inputs are valid seed files damaged by :func:`mutated` (truncation, bad bytes, deleted
spans, weird numbers, duplicated lines). Hypothesis runs a fixed, seeded number of
examples per entry point (``HWNAS_FUZZ_EXAMPLES``, default 12), so the suite is
deterministic and bounded in time.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hwnas.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("HWNAS_FUZZ_EXAMPLES", "12"))

#: Hypothesis settings of every fuzz test: seeded, bounded, no example database on disk.
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

#: Longest acceptable error output (the 1.3 KB alias bomb once produced 2 GB).
MAX_ERR_CHARS = 600


@dataclass
class Result:
    code: int
    out: str
    err: str
    #: WARNING (and worse) log records of the run: the counted warnings of an accepted input.
    warnings: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    """Collects the hwnas log records of one in-process run (the CLI's basicConfig handler
    is bound to whatever stderr the first run had, so records are taken here)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


class Hung(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hung()


def run(argv: Sequence[str], timeout_s: int = 60) -> Result:
    """``hwnas ARGV`` in this process, with stdout/stderr captured and a time limit."""
    out, err = io.StringIO(), io.StringIO()
    collect = _Collect()
    logging.getLogger("hwnas").addHandler(collect)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
    except Hung:
        pytest.fail(f"hwnas {' '.join(map(str, argv))[:200]} hung for more than {timeout_s} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        logging.getLogger("hwnas").removeHandler(collect)
    return Result(code, out.getvalue(), err.getvalue(), collect.lines)


def check(res: Result, argv: Sequence[Any], names: Iterable[str] = (), *, ok: str | None = None) -> None:
    """The contract for one generated input, asserted exactly.

    Exit 2 with one bounded line naming one of ``names``; or, only when the caller passes
    ``ok`` (a regex of the documented success output, for inputs that a valid file can
    also be after damage: a changed number, swapped lines), exit 0 whose stdout matches it
    and whose stderr is empty. ``ok=None`` means this input must be refused.
    """
    cmd = " ".join(map(str, argv))[:300]
    assert res.code in (0, 2), f"exit {res.code} for: {cmd}\n{res.err[-2000:]}"
    assert "Traceback" not in res.err, f"traceback for: {cmd}\n{res.err[-3000:]}"
    if res.code == 0:
        assert ok is not None, f"accepted input that must be refused: {cmd}\nstdout: {res.out[:400]}"
        assert re.search(ok, res.out), f"exit 0 without the documented output /{ok}/ for: {cmd}\n{res.out[:600]}"
        assert not res.err.strip(), f"exit 0 with stderr for: {cmd}\n{res.err[:600]}"
    if res.code == 2:
        lines = res.err.strip().splitlines()
        assert len(lines) == 1, f"{len(lines)} lines on stderr for: {cmd}\n{res.err[:2000]}"
        assert len(res.err) <= MAX_ERR_CHARS, f"{len(res.err)}-char error for: {cmd}\n{res.err[:600]}"
        wanted = [n for n in names if n]
        if wanted:
            assert any(n in res.err for n in wanted), f"error does not name {wanted}: {res.err.strip()}"


#: The documented success output of each command (``check(..., ok=...)``).
OK_SEARCH = r"\d+ rollouts in \d+ steps"
OK_DERIVE = r"wrote \d+ architecture\(s\) to"
OK_TRAIN = r"\d+/\d+ epochs; checkpoint"
OK_FIT = r"\d+ train / \d+ held-out networks"
OK_PREDICT = r"(?m)^network\s+prediction"
OK_EVAL = r"(?m)^arch_str\s.*reward"
OK_INGEST = r"(?m)^file\s+format\s+items\s+stored\s.*skipped"
OK_EXPORT = r"wrote \d+ items \(\d+ primitives, \d+ networks\) to"
OK_PROFILE = r"(?m)^backend\s+primitives\s+networks"
OK_STORE = {"ls": r"schema v\d+, \d+ device\(s\)", "show": r"(?m)^id\s+kind|no measurements", "fit-cost": OK_FIT}


def digest(path: Path) -> str:
    """sha256 of a file, or of every file under a folder (to prove nothing changed)."""
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        if p.exists():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


WEIRD_NUMBERS = ["nan", "inf", "-inf", "-1", "-5", "0", "1e308", "-1e-308", "10000000000000000000000", "1.5",
                 "''", "[]", "{}", "null", "true", "\"x\"", "0x10", "1e999"]


@st.composite
def mutated(draw: Any, seed: bytes) -> bytes:
    """``seed`` damaged in one to three ways a disk, an editor or an attacker could."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "bytes", "delete", "number", "dup_line", "swap_lines", "empty"]))
        n = len(data)
        if kind == "truncate" and n:
            del data[draw(st.integers(0, n - 1)):]
        elif kind == "bytes":
            pos = draw(st.integers(0, n))
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and n:
            a = draw(st.integers(0, n - 1))
            del data[a:a + draw(st.integers(1, 40))]
        elif kind == "number":
            text = data.decode("utf-8", "replace")
            nums = [m.span() for m in re.finditer(r"-?\d+(\.\d+)?", text)]
            if nums:
                a, b = draw(st.sampled_from(nums))
                text = text[:a] + draw(st.sampled_from(WEIRD_NUMBERS)) + text[b:]
                data = bytearray(text.encode())
        elif kind in ("dup_line", "swap_lines"):
            lines = bytes(data).split(b"\n")
            if len(lines) > 1:
                i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                if kind == "dup_line":
                    lines.insert(j, lines[i])
                else:
                    lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"\n".join(lines))
        elif kind == "empty":
            data = bytearray()
    return bytes(data)


def text_mutations(path: Path) -> st.SearchStrategy[bytes]:
    return mutated(path.read_bytes())


@pytest.fixture(scope="session")
def fuzz_root() -> Path:
    """One fixed folder (emptied first) instead of pytest's numbered temp folders: the seeds
    (a run dir's config.yaml, models) hold absolute paths, and Hypothesis derives its examples
    from the seeds' bytes, so a path that changes from run to run made every run fuzz other
    inputs. With a fixed root the suite checks the same examples on every run and machine."""
    root = Path(tempfile.gettempdir()) / "hwnas-fuzz"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def fresh(root: Path, name: str) -> Path:
    """A new empty folder under ``root`` for one example."""
    i = 0
    while (root / f"{name}-{i}").exists():
        i += 1
    d = root / f"{name}-{i}"
    d.mkdir()
    return d


sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))


# -- valid seeds, built once per session ---------------------------------------------------
NB201_TABLE = DATA / "nb201_latency_slice.csv.gz"


def table_config(folder: Path, steps: int = 2) -> Path:
    """A fast, valid search: nb201 + evolution + the published latency table.

    The table is copied one folder up and named relatively (``../``), so that the config's
    bytes do not depend on where the checkout or the temp folder is: Hypothesis derives its
    examples from these bytes, and an absolute path made each machine fuzz other inputs. A
    mutated copy written to a sibling folder (:func:`fresh`) still finds the table."""
    table = folder.parent / NB201_TABLE.name
    if not table.exists():
        shutil.copyfile(NB201_TABLE, table)
    p = folder / "search.yaml"
    p.write_text(f"""seed: 0
search_space: {{type: nb201}}
controller: {{type: evolution, population: 4, sample_size: 2}}
evaluator: {{type: predictor}}
objective: {{type: hardware, metric: latency, table: ../{NB201_TABLE.name}, column: gold_6226_ms}}
trainer: {{type: simple, steps: {steps}, rollouts_per_step: 2, plot: false}}
""")
    return p


def digits_config(folder: Path) -> Path:
    """A tiny, valid training config: a 4-channel, 1-cell nb201 on 64 digits images."""
    p = folder / "train.yaml"
    p.write_text("""seed: 0
dataset: {type: digits, resolution: 8, channels: 1, max_train: 64}
search_space: {type: nb201, channels: 4, cells_per_stage: 1, resolution: 8, in_channels: 1}
run: {train: {epochs: 1, batch_size: 32}}
""")
    return p


@pytest.fixture(scope="session")
def seeds(fuzz_root: Path) -> dict[str, Path]:
    """Valid inputs of every kind: config, run dir, arch file, store, model folder."""
    d = fuzz_root / "seeds"
    d.mkdir()
    cfg = table_config(d)
    run_dir = d / "run"
    assert run(["search", cfg, "--run-dir", run_dir]).code == 0
    assert run(["derive", run_dir, "--top", "1", "--out", d / "best.yaml"]).code == 0
    store = d / "store.sqlite"
    assert run(["profile", "--space", "toy", "--space-opt", "n=3", "--space-opt", "k=3", "--backend", "fake",
                "--networks", "12", "--store", store, "--sessions", "1"]).code == 0
    models = d / "models"
    res = run(["fit-cost", "--store", store, "--device", "cpu", "--backend", "fake", "--model", "lut,linear1",
               "--out", models])
    assert res.code == 0, res.err
    nets = d / "nets.txt"
    nets.write_text("\n".join(["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                               "skip_connect~2|"]) + "\n")
    return {"config": cfg, "run_dir": run_dir, "arch": d / "best.yaml", "store": store,
            "model": models / "linear1", "train_config": digits_config(d), "nets": nets}
