"""Damaged tables, network files, model folders and architecture strings through
fit-cost, predict and eval-arch."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.inputs import file_sha256 as _sha256

from .conftest import DATA, EXAMPLES, FUZZ, OK_EVAL, OK_FIT, OK_PREDICT, check, fresh, mutated, run

HEAD = DATA / "nb201_latency_head60.csv"


def test_fit_cost_damaged_table(fuzz_root: Path) -> None:
    seed = b"\n".join(HEAD.read_bytes().splitlines()[:25]) + b"\n"

    @settings(FUZZ, max_examples=max(3, EXAMPLES // 2))  # each valid example fits a model
    @given(mutated(seed))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "csv")
        table = d / "lat.csv"
        table.write_bytes(data)
        argv = ["fit-cost", "--dataset", table, "--space", "nb201", "--target", "gold_6226_ms", "--model", "lstm",
                "--train", "12"]
        res = run(argv, timeout_s=180)
        check(res, argv, [table.name, "gold_6226_ms", "train"], ok=OK_FIT)
        if res.code == 0 and data.count(b"\n") != seed.count(b"\n"):  # rows lost or added: counted
            assert res.warnings or "12 train" in res.out, res.out[:300]

    inner()


def test_predict_damaged_networks_file(seeds: dict[str, Path], fuzz_root: Path) -> None:
    spec = json.dumps([{"input_shape": [8, 1, 1], "nodes": [{"op": "fc", "c_in": 8, "c_out": 8, "h": 1, "w": 1},
                                                            {"op": "fc", "c_in": 8, "c_out": 10, "h": 1, "w": 1}],
                        "edges": [[0, 1]]}]).encode()

    @FUZZ
    @given(st.one_of(mutated(spec), mutated(seeds["nets"].read_bytes())))
    def inner(data: bytes) -> None:
        d = fresh(fuzz_root, "nets")
        nets = d / "nets.json"
        nets.write_bytes(data)
        argv = ["predict", "--model", seeds["model"], "--networks", nets, "--space", "toy"]
        check(run(argv), argv, [nets.name, str(seeds["model"])], ok=OK_PREDICT)

    inner()


def test_predict_damaged_model_folder(seeds: dict[str, Path], fuzz_root: Path) -> None:
    """model.json damaged and the manifest re-signed, so the damage reaches the loader."""
    @FUZZ
    @given(mutated((seeds["model"] / "model.json").read_bytes()), st.booleans())
    def inner(data: bytes, resign: bool) -> None:
        d = fresh(fuzz_root, "model") / "m"
        shutil.copytree(seeds["model"], d)
        (d / "model.json").write_bytes(data)
        if resign:
            manifest = json.loads((d / "manifest.json").read_text())
            manifest["files"]["model.json"] = _sha256(d / "model.json")
            (d / "manifest.json").write_text(json.dumps(manifest))
        argv = ["predict", "--model", d, "--space", "toy", "--space-opt", "n=3", "--space-opt", "k=3", "--arch", "0-1-2"]
        unchanged = data == (seeds["model"] / "model.json").read_bytes()
        check(run(argv), argv, [str(d)], ok=OK_PREDICT if resign or unchanged else None)

    inner()


def test_eval_arch_strings(seeds: dict[str, Path]) -> None:
    @FUZZ
    @given(st.one_of(st.text(max_size=120), mutated(b"|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|"
                                                     b"none~1|nor_conv_1x1~2|").map(lambda b: b.decode("utf-8",
                                                                                                      "replace"))))
    def inner(text: str) -> None:
        if text.startswith("-") or "\x00" in text:
            text = " " + text.replace("\x00", "")
        argv = ["eval-arch", seeds["config"], "--arch", text]
        check(run(argv), argv, ["arch", "nb201"], ok=OK_EVAL)

    inner()
