"""``hwnas profile --onnx/--torch``, ``hwnas fit-cost --model kernel`` and ``hwnas predict
--onnx`` end to end (in process), and their one-line errors for bad input (exit status 2)."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from hwnas.cli import main
from hwnas.store import Store

FAST = ["--warmup", "1", "--min-repeats", "3", "--max-repeats", "4", "--time-budget", "0.5", "--sessions", "1"]


def hwnas(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def predictor(kernel_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pred") / "kernel"
    rc = main(["fit-cost", "--model", "kernel", "--store", str(kernel_store), "--device", "cpu", "--out", str(out),
               "--test-frac", "0.25"])
    assert rc == 0 and (out / "model.json").exists() and (out / "weights.pt").exists()
    return out


def test_profile_onnx_measures_into_the_store_and_resumes(capsys, kernel_store, small_onnx, tmp_path) -> None:
    store = tmp_path / "s.sqlite"
    shutil.copy(kernel_store, store)  # holds this machine's rules: no rule measurement here
    rc, out, err = hwnas(capsys, "profile", "--onnx", str(small_onnx), "--store", str(store), "--json", *FAST)
    assert rc == 0, err
    res = json.loads(out)
    b = res["backends"][0]
    assert b["median_ms"] > 0 and b["kernels"] > 10 and b["detection"]["untraced"] == 0
    with Store(store, create=False) as st:
        net = st.query(kind="network", target=res["hash"])
        blocks = st.query(kind="block", network=res["hash"])
        assert len(net) == 1 and len(net[0]["samples"]) >= 3 and net[0]["error"] is None
        assert len(blocks) == b["kernels"] and all(x["median_ms"] > 0 for x in blocks)
        assert sum(x["median_ms"] for x in blocks) == pytest.approx(b["kernel_sum_ms"])
    rc, out, _ = hwnas(capsys, "profile", "--onnx", str(small_onnx), "--store", str(store), "--json", *FAST)
    again = json.loads(out)
    assert again["backends"][0].get("skipped") and again["hash"] == res["hash"]
    rc, out, _ = hwnas(capsys, "profile", "--torch", "hwnas.zoo:nb201", "--torch-opt", "cells=1", "--torch-opt",
                       "channels=8", "--store", str(store), "--no-per-node", *FAST)
    assert rc == 0 and out.splitlines()[0].split()[:2] == ["hwnas.zoo:nb201:", "graph"], out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("onnxruntime ")]
    assert float(row[1]) > 0 and row[3:] == ["-", "-", "-", "-"], row  # measured; no per-node kernels asked


def test_predict_onnx_breakdown(capsys, predictor, small_onnx) -> None:
    rc, out, err = hwnas(capsys, "predict", "--onnx", str(small_onnx), "--predictor", str(predictor), "--top", "3")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert "predicted" in lines[0] and "naive per-node sum" in lines[0] and len(lines) == 3 + 3
    rc, out, _ = hwnas(capsys, "predict", "--onnx", str(small_onnx), "--predictor", str(predictor), "--json")
    res = json.loads(out)
    assert res["total_ms"] > 0 and res["naive_per_node_ms"] > 0 and len(res["kernels"]) > 10
    assert abs(sum(k["share"] for k in res["kernels"]) - 1) < 1e-6 and all(k["nodes"] for k in res["kernels"])


def _one_line_error(result: tuple[int, str, str], *fragments: str) -> None:
    rc, _, err = result
    assert rc == 2, (rc, err)
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    for f in fragments:
        assert f in err, err


def test_bad_inputs_are_one_line(capsys, predictor, small_onnx, tmp_path) -> None:
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(small_onnx.read_bytes()[:2000])
    _one_line_error(hwnas(capsys, "predict", "--onnx", str(cut), "--predictor", str(predictor)), str(cut),
                    "not a readable")
    _one_line_error(hwnas(capsys, "profile", "--onnx", str(cut), "--store", str(tmp_path / "x.sqlite")),
                    "not a readable")
    assert not (tmp_path / "x.sqlite").exists()  # refused before any store is created

    class Odd(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return torch.nn.functional.grid_sample(x, torch.zeros(1, 4, 4, 2), align_corners=False)

    buf = io.BytesIO()
    torch.onnx.export(Odd(), (torch.randn(1, 3, 8, 8),), buf, dynamo=False, opset_version=17, input_names=["img"],
                      dynamic_axes={"img": {0: "batch"}})
    odd = tmp_path / "odd.onnx"
    odd.write_bytes(buf.getvalue())
    _one_line_error(hwnas(capsys, "predict", "--onnx", str(odd), "--predictor", str(predictor)),
                    "input 'img' has a dynamic shape", "--input-shape img=1x3x8x8")
    _one_line_error(hwnas(capsys, "predict", "--onnx", str(odd), "--predictor", str(predictor), "--input-shape",
                          "img=1x3x8x8"), "no kernel predictor for 'op_gridsample'", "ONNX node '/GridSample'")
    # no --predictor: the shipped kernel predictor answers (its absence is tests/assets/test_kernel_asset.py's)
    rc, out, _ = hwnas(capsys, "predict", "--onnx", str(small_onnx))
    assert rc == 0 and "by asset:kernel-cpu-ort" in out
    # no --space at all profiles the card's default space (tests/test_card.py); options without a space are refused
    _one_line_error(hwnas(capsys, "profile", "--space-opt", "width=0.5", "--store", str(tmp_path / "y.sqlite")),
                    "--space", "--onnx")
