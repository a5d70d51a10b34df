"""Issue 26, the file-shaped kinds, one generator each: damaged compressed tables (1),
checkpoints with wrong-typed fields (2), mappings with wrong-typed sections (3), run
directories with garbage history rows (4), tables with too few rows (7) and cost values
at the float extremes (8). Each states its contract exactly: which inputs must be
refused (exit 2, one line naming the file) and which accepted (with the counted warning).
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import math
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import DATA, EXAMPLES, FUZZ, OK_FIT, OK_INGEST, check, fresh, run

HEAD = DATA / "nb201_latency_head60.csv"
ROWS = HEAD.read_text().splitlines()
TARGET = "gold_6226_ms"
FEW = settings(FUZZ, max_examples=max(3, EXAMPLES // 2))  # valid examples fit a model: keep them few


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("t.csv", data)
    return buf.getvalue()


def _unzip(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read(z.namelist()[0])


CODECS = {".gz": (gzip.compress, gzip.decompress), ".bz2": (bz2.compress, bz2.decompress),
          ".xz": (lzma.compress, lzma.decompress), ".zip": (_zip, _unzip)}


@st.composite
def damaged_archive(draw: Any, plain: bytes) -> tuple[str, bytes]:
    """A compressed table cut short, with bytes overwritten, or emptied."""
    ext = draw(st.sampled_from(sorted(CODECS)))
    data = bytearray(CODECS[ext][0](plain))
    kind = draw(st.sampled_from(["truncate", "overwrite", "empty"]))
    if kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)):]
    elif kind == "overwrite":
        pos = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=8))
        data[pos:pos + len(chunk)] = chunk
    else:
        data = bytearray()
    return ext, bytes(data)


def _decodes_to(ext: str, data: bytes, plain: bytes) -> bool:
    try:
        return CODECS[ext][1](data) == plain
    except Exception:  # noqa: BLE001 - any decoder failure means the file is damaged
        return False


def test_kind1_damaged_compressed_table(fuzz_root: Path) -> None:
    plain = ("\n".join(ROWS[:25]) + "\n").encode()

    @FEW
    @given(damaged_archive(plain))
    def inner(case: tuple[str, bytes]) -> None:
        ext, data = case
        table = fresh(fuzz_root, "zcsv") / f"lat.csv{ext}"
        table.write_bytes(data)
        argv = ["fit-cost", "--dataset", table, "--space", "nb201", "--target", TARGET, "--model", "mlp",
                "--train", "12"]
        # accepted only where the archive still decodes to the table (a damaged zip header field)
        check(run(argv, timeout_s=180), argv, [table.name], ok=OK_FIT if _decodes_to(ext, data, plain) else None)

    inner()


WRONG = st.one_of(st.text(max_size=6), st.floats(allow_nan=True), st.booleans(), st.none(),
                  st.lists(st.text(max_size=3), min_size=1, max_size=3), st.integers(-10**6, -1))


@pytest.fixture(scope="module")
def train_checkpoint(seeds: dict[str, Path], fuzz_root: Path) -> bytes:
    base = fresh(fuzz_root, "ckpt26")
    assert run(["train", seeds["train_config"], "--arch", seeds["arch"], "--out", base, "--epochs", "2",
                "--stop-after", "1"]).code == 0
    return (base / "checkpoint.pt").read_bytes()


def test_kind2_checkpoint_with_wrong_typed_fields(seeds: dict[str, Path], fuzz_root: Path,
                                                  train_checkpoint: bytes) -> None:
    import torch

    state = torch.load(io.BytesIO(train_checkpoint), weights_only=True)

    @FUZZ
    @given(st.sampled_from(["epoch", "losses", "history", "model", "optimizer", "scheduler", "arch", "format"]),
           WRONG, st.booleans())
    def inner(key: str, value: Any, nest: bool) -> None:
        d = fresh(fuzz_root, "ckpt26")
        bad = dict(state)
        bad[key] = [value] if nest and key in ("losses", "history") else value
        torch.save(bad, d / "checkpoint.pt")
        argv = ["train", seeds["train_config"], "--arch", seeds["arch"], "--out", d, "--epochs", "2", "--resume"]
        check(run(argv, timeout_s=120), argv, ["checkpoint.pt"])  # every wrong type is refused

    inner()


#: The valid types of a mapping entry's fields (bool is not an integer here).
FIELD_TYPES = {"op": (str,), "c_in": (int,), "c_out": (int,), "h": (int,), "w": (int,), "kernel": (int,),
               "stride": (int,), "expansion": (int, float), "act": (str,), "se": (bool,), "extras": (dict,)}
YAML_VALUES = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.floats(allow_nan=True), st.booleans(),
                        st.none(), st.lists(st.integers(0, 3), min_size=1, max_size=3),
                        st.dictionaries(st.sampled_from(["a", "b"]), st.lists(st.integers(), min_size=1),
                                        min_size=1, max_size=2))


def _wrong_type(key: str, value: Any) -> bool:
    ok = FIELD_TYPES[key]
    return isinstance(value, bool) and bool not in ok or not isinstance(value, ok)


def test_kind3_mapping_with_wrong_typed_sections(fuzz_root: Path) -> None:
    log = DATA / "fpga" / "dnndk_proxylessmobile05.log"
    entry = {"op": "conv", "c_in": 3, "c_out": 16, "h": 32, "w": 32, "kernel": 3, "extras": {"tag": 1}}

    @FUZZ
    @given(st.sampled_from([*sorted(FIELD_TYPES), "(entry)"]), YAML_VALUES)
    def inner(key: str, value: Any) -> None:
        if key != "(entry)" and not _wrong_type(key, value):
            value = [value]  # a list is the wrong type for every field
        import yaml

        y = fresh(fuzz_root, "map26") / "mapping.yaml"
        y.write_text(yaml.safe_dump({"conv1": value if key == "(entry)" else {**entry, key: value}}))
        argv = ["ingest", "--format", "dnndk", log, "--mapping", y, "--device", "x", "--dry-run"]
        valid_key = key == "(entry)" and isinstance(value, str)  # a string entry is a primitive key: parsed
        check(run(argv), argv, [y.name], ok=OK_INGEST if valid_key and value.startswith("conv ") else None)

    inner()


def _garbage_row(draw: Any, row: dict[str, Any], other_arch: str) -> dict[str, Any]:
    field = draw(st.sampled_from(["arch", "no_arch", "perfs", "reward", "step", "arch_str"]))
    row = dict(row)
    if field == "no_arch":
        del row["arch"]
    elif field == "arch":
        row["arch"] = draw(st.one_of(WRONG, st.just(row["arch"][:-1]), st.just([*row["arch"][:-1], 99]),
                                     st.just([str(a) for a in row["arch"]])))
    elif field == "perfs":
        row["perfs"] = draw(st.one_of(WRONG.filter(lambda v: v is not None),
                                      st.just({**row["perfs"], "latency_ms": draw(WRONG)})))
    elif field == "reward":
        row["reward"] = draw(st.one_of(st.text(max_size=4), st.booleans(), st.lists(st.integers(), min_size=1)))
    elif field == "step":
        row["step"] = draw(st.one_of(st.text(max_size=4), st.floats(), st.booleans(), st.integers(-10**6, -2)))
    else:
        row["arch_str"] = other_arch
    return row


@st.composite
def garbage_history(draw: Any, doc: dict[str, Any], other_arch: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    hist = doc["state"]["history"]
    i = draw(st.integers(0, len(hist) - 1))
    hist[i] = _garbage_row(draw, hist[i], other_arch)
    return doc


def test_kind4_run_dir_with_garbage_history(seeds: dict[str, Path], fuzz_root: Path) -> None:
    rd0 = seeds["run_dir"]
    doc = json.loads((rd0 / "checkpoint.json").read_text())
    archs = {r["arch_str"] for r in doc["state"]["history"]}
    other = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert other not in archs

    @FUZZ
    @given(garbage_history(doc, other))
    def inner(bad: dict[str, Any]) -> None:
        d = fresh(fuzz_root, "hist26")
        rd = d / "run"
        shutil.copytree(rd0, rd)
        (rd / "checkpoint.json").write_text(json.dumps(bad))
        for argv in (["derive", rd, "--out", d / "b.yaml"], ["search", seeds["config"], "--run-dir", rd, "--steps", "3"]):
            check(run(argv), argv, ["checkpoint.json"])  # the right config hash does not make garbage a run

    inner()


def _split_ok(n: int, frac: float) -> bool:
    n_test = min(max(1, int(round(n * frac))), n - 1) if n >= 2 else 0
    return n >= 4 and n_test >= 2 and n - n_test >= 2


def test_kind7_too_few_rows(fuzz_root: Path) -> None:
    @FEW
    @given(st.integers(0, 7), st.sampled_from([0.1, 0.3, 0.5, 0.8]))
    def inner(n: int, frac: float) -> None:
        table = fresh(fuzz_root, "few26") / "few.csv"
        table.write_text("\n".join(ROWS[:n + 1]) + "\n")
        argv = ["fit-cost", "--dataset", table, "--space", "nb201", "--target", TARGET, "--model", "mlp",
                "--test-frac", str(frac)]
        res = run(argv, timeout_s=180)
        check(res, argv, [table.name, "--test-frac"], ok=OK_FIT if _split_ok(n, frac) else None)
        assert res.code == (0 if _split_ok(n, frac) else 2), res.err
        if res.code == 2 and n < 4:
            assert "at least 4" in res.err, res.err

    inner()


EXTREMES = st.one_of(st.sampled_from(["1e308", "1.7976931348623157e308", "inf", "-inf", "nan", "-1", "0", "-0",
                                      "1e-320", "5e-324", "1e10", "1e9", "999999999.5", "0.05"]),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


def test_kind8_targets_at_float_extremes(fuzz_root: Path) -> None:
    col = ROWS[0].split(",").index(TARGET)

    @FEW
    @given(st.integers(1, 24), EXTREMES)
    def inner(line: int, text: str) -> None:
        rows = list(ROWS[:25])
        cells = rows[line].split(",")
        cells[col] = text
        rows[line] = ",".join(cells)
        table = fresh(fuzz_root, "ext26") / "ext.csv"
        table.write_text("\n".join(rows) + "\n")
        argv = ["fit-cost", "--dataset", table, "--space", "nb201", "--target", TARGET, "--model", "mlp",
                "--train", "12"]
        res = run(argv, timeout_s=180)
        v = float(text)
        refused = not math.isnan(v) and (v < 0 or v > 1e9)
        check(res, argv, [f"{table.name}:{line + 1}"], ok=None if refused else OK_FIT)
        assert res.code == (2 if refused else 0), res.err
        if not refused and (math.isnan(v) or v < 0.1):  # dropped: a missing value or below --min-value
            assert res.warnings and "dropped" in res.warnings[0], res.warnings

    inner()
