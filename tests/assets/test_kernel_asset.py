"""The shipped kernel predictor: built by one call (a tiny one here), its provenance in the
manifest, ``hwnas predict --onnx`` answering from it with no --predictor, the one-line
note on another machine, and the one-line refusals of a bad predictor."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hwnas.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


#: the block families the conftest's small model is made of (newer families stay out, so the
#: tiny test rules cover every fused pair of the drawn networks)
CLASSIC = {"plain": 1.0, "dwsep": 1.0, "mbconv": 1.0, "mbconv_se": 4.0, "shuffle": 4.0, "basic": 1.0}


@pytest.fixture(scope="module")
def asset_dir(tmp_path_factory, measured_rules) -> Path:
    """A tiny kernel-cpu-ort built by the real builder: a kernel job of 8 small random networks
    (this machine's test rules stored first: no rule measurement), fitted and packaged."""
    from hwnas.assets.kernel_asset import NAME, KernelAssetRequest, build_kernel_asset
    from hwnas.nn.kernels.rules import KIND
    from hwnas.nn.kernels.synthetic import BLOCKS
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.profilers.timing import TimingProtocol
    from hwnas.store import Store

    root = tmp_path_factory.mktemp("kasset")
    work, out = root / "work", root / "data"
    work.mkdir()
    with Store(work / "store.sqlite") as st:
        dev_id = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev_id, "onnxruntime", KIND, measured_rules.to_dict(), {"test": True})
    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=5, min_time_ms=0.5, time_budget_s=0.5, sessions=1)
    req = KernelAssetRequest(networks=8, rounds=1, seed=1, time_limit_s=None, note="test asset",
                             max_macs=3e7, max_resolution=64, protocol=proto,
                             weights={b: CLASSIC.get(b, 0.0) for b in BLOCKS})
    rep = build_kernel_asset(work, out, req)
    assert rep["name"] == NAME and (out / NAME / "asset.json").is_file()
    return out


@pytest.fixture
def shipped(asset_dir, monkeypatch) -> Path:
    import hwnas.assets

    monkeypatch.setattr(hwnas.assets, "DATA_DIR", asset_dir)
    return asset_dir


def test_the_manifest_carries_the_provenance(asset_dir) -> None:
    from hwnas import assets
    from hwnas.assets.kernel_asset import NAME
    from hwnas.profilers.fingerprint import device_fingerprint

    meta = assets.get(NAME, asset_dir).verify().meta
    here = device_fingerprint("cpu", 1)
    assert meta["kind"] == "cost_model" and meta["predictor"] == "kernel"
    assert meta["fingerprint"] == here.fingerprint and meta["device_info"]["cpu_model"] == here.cpu_model
    assert meta["runtimes"]["onnxruntime"] == dict(here.runtimes)["onnxruntime"]
    built = meta["built"]
    assert built["request"]["networks"] == 8 and built["request"]["note"] == "test asset"
    assert built["job"]["complete"] and built["job"]["measured"] == 8
    assert 0 < meta["data"]["networks"] <= 8
    assert meta["data"]["kernels"] > meta["data"]["networks"]
    assert built["job"]["protocol"]["threads"] == 1 and "stopped_early" in built["job"]
    assert set(built["wall_s"]) >= {"kernel_job_s", "fit_s", "load_s", "new_device_s"}
    assert built["wall_s"]["kernel_job_s"] > 0 and built["date"][:2] == "20"
    assert {"before", "after"} <= set(built["load_average_1min"]) and "test asset" in meta["provenance"]
    assert meta["metrics"]["test_networks"] >= 1 and meta["metrics"]["train_networks"] >= 1
    assert sum(f.stat().st_size for f in (asset_dir / NAME).iterdir()) < 4_000_000


def test_predict_onnx_without_predictor_uses_the_shipped_asset(capsys, shipped, small_onnx) -> None:
    rc, out, err = run_cli(capsys, "predict", "--onnx", str(small_onnx), "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["predictor"] == "asset:kernel-cpu-ort" and doc["total_ms"] > 0 and doc["kernels"]
    assert doc["fingerprint_note"] is None and "built on another machine" not in err  # built here


def test_another_machine_gets_a_one_line_note(capsys, shipped, small_onnx, tmp_path, monkeypatch) -> None:
    import hwnas.assets

    other = tmp_path / "data"
    shutil.copytree(shipped / "kernel-cpu-ort", other / "kernel-cpu-ort")
    mpath = other / "kernel-cpu-ort" / "asset.json"
    meta = json.loads(mpath.read_text())
    meta["device_info"]["cpu_model"] = "Some Other CPU"
    meta["device_info"]["runtimes"]["onnxruntime"] = "0.1.0"
    mpath.write_text(json.dumps(meta))
    monkeypatch.setattr(hwnas.assets, "DATA_DIR", other)
    rc, out, err = run_cli(capsys, "predict", "--onnx", str(small_onnx))
    assert rc == 0 and "predicted" in out  # it still answers
    (line,) = [x for x in err.splitlines() if "another machine" in x]
    assert "cpu_model: asset 'Some Other CPU'" in line and "onnxruntime: asset '0.1.0'" in line
    assert "hwnas profile --kernels" in line and "hwnas fit-cost --model kernel" in line


def test_bad_predictors_are_refused_in_one_line(capsys, shipped, small_onnx, tmp_path, monkeypatch) -> None:
    import hwnas.assets

    rc, _, err = run_cli(capsys, "predict", "--onnx", str(small_onnx), "--predictor", "asset:kernel-gpu")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "unknown asset 'kernel-gpu'" in err and "kernel predictor assets here: kernel-cpu-ort" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(capsys, "predict", "--onnx", str(small_onnx), "--predictor", str(tmp_path / "empty"))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "not a cost-model folder" in err
    monkeypatch.setattr(hwnas.assets, "DATA_DIR", Path(hwnas.__file__).parent / "assets" / "data")
    rc, _, err = run_cli(capsys, "predict", "--onnx", str(small_onnx), "--predictor", "asset:nb201-pixel3")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "not a kernel predictor" in err
    monkeypatch.setattr(hwnas.assets, "DATA_DIR", tmp_path / "empty")
    rc, _, err = run_cli(capsys, "predict", "--onnx", str(small_onnx))
    assert rc == 2 and "the shipped asset:kernel-cpu-ort is not in this install" in err
    assert "hwnas profile --kernels" in err and len(err.strip().splitlines()) == 1
