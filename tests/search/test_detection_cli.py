"""``hwnas detect`` / ``hwnas profile --detector`` / ``hwnas search`` on a detection config,
through the command line on a tiny synthetic set (the -cpu config scaled down)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from hwnas.cli import main
from hwnas.cli.detect import detector_primitives_of
from hwnas.search.detection.model import detector_primitives
from hwnas.search.detection.ssd import HeadOptions

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAST = ["--warmup", "1", "--min-repeats", "2", "--max-repeats", "3", "--sessions", "1", "--min-time-ms", "0",
        "--time-budget", "0.2"]


def tiny_config(folder: Path) -> Path:
    """detnas-voc-cpu.yaml at 32 px, a few steps, data under FOLDER/data (relative path),
    priced from FOLDER/s.sqlite (the store `hwnas profile --detector` fills)."""
    raw = yaml.safe_load((CONFIGS / "detnas-voc-cpu.yaml").read_text())
    raw["search_space"].update(resolution=32)
    raw["dataset"].update(root="data/voc", resolution=32)
    raw["head"]["extra_channels"] = [32, 16]
    raw["supernet"].update(steps=4, batch_size=8, warmup_steps=1)
    raw["controller"].update(population=2, sample_size=2)
    raw["search"].update(rollouts=4, batch=2, eval_images=6, eval_batch_size=6, calib_batches=1)
    raw["final"].update(steps=3, batch_size=8, warmup_steps=1)
    raw["hardware"] = {"store": "s.sqlite", "device": "cpu", "backend": "onnxruntime"}
    path = folder / "det.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_json(capsys: Any, *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != "test.json"}


def test_detect_profile_price_resume_restart(tmp_path: Path, capsys: Any) -> None:
    cfg, run = tiny_config(tmp_path), tmp_path / "run"
    common = [str(cfg), "--run-dir", str(run)]
    # no data yet: one line saying how to make it
    assert main(["detect", *common]) == 2
    err = capsys.readouterr().err
    assert "dataset.root" in err and "--synth" in err and err.count("\n") == 1
    assert main(["profile", "--detector", str(cfg), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "--synth" in capsys.readouterr().err and not (tmp_path / "s.sqlite").exists()

    res = run_json(capsys, "detect", *common, "--synth", "16", "--synth-size", "32", "--stop-after", "supernet")
    assert res["stopped_after"] == "supernet" and (tmp_path / "data" / "voc").is_dir()
    assert sorted(p.name for p in run.iterdir()) == ["supernet.json", "supernet.pt"]
    supernet_at = (run / "supernet.pt").stat().st_mtime_ns

    prof = run_json(capsys, "profile", "--detector", str(cfg), "--device", "cpu", "--backend", "onnxruntime",
                    "--store", str(tmp_path / "s.sqlite"), *FAST)
    measured = prof["backends"][0]["primitives"]
    assert measured > 0 and prof["n_primitives"] == measured

    space, profiled = detector_primitives_of(str(cfg))  # what was profiled covers every derived detector
    rng, keys = np.random.default_rng(0), {p.key for p in profiled}
    for _ in range(5):
        prims = detector_primitives(space, space.sample(rng), 3, 32, HeadOptions(extra_channels=(32, 16), ratios=(2.0,)))
        assert {p.key for p in prims} <= keys

    res = run_json(capsys, "detect", *common)  # continues: the supernet is not retrained
    assert (run / "supernet.pt").stat().st_mtime_ns == supernet_at
    assert res["predicted_latency_ms"] > 0 and 0.0 <= res["test"]["map50"] <= 1.0
    assert len(res["test"]["ap50_per_class"]) == 3 and "coco_map" in res["test"]
    history = json.loads((run / "search.json").read_text())["history"]
    assert len(history) == 4 and all(h["perfs"]["latency_ms"] > 0 for h in history)

    timed = run_json(capsys, "detect", *common, "--measure")  # the derived detector end to end, same store
    assert timed["measured_latency_ms"] > 0 and (run / "detector.onnx").is_file()
    assert json.loads((run / "measure.json").read_text())["measured_latency_ms"] == timed["measured_latency_ms"]

    before = stamps(run)
    again = run_json(capsys, "search", *common)  # routed to the same flow: every stage done, nothing retrained
    assert stamps(run) == before and again["test"] == res["test"] and again["arch"] == res["arch"]

    run_json(capsys, "detect", *common, "--restart", "--stop-after", "supernet")
    assert (run / "supernet.pt").stat().st_mtime_ns != supernet_at and not (run / "search.json").exists()


def test_wrong_config_or_flags_refused_in_one_line(capsys: Any) -> None:
    cfg = CONFIGS / "search-mbv2-digits.yaml"
    assert main(["detect", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "not a detection config" in err and f"hwnas search {cfg}" in err and err.count("\n") == 1
    assert main(["profile", "--detector", str(cfg)]) == 2
    assert "not a detection config" in capsys.readouterr().err
    detection = str(CONFIGS / "detnas-voc-cpu.yaml")
    assert main(["search", detection, "--budget-ms", "2"]) == 2  # search-only flags are not silently dropped
    assert "--budget-ms do not apply" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--space", "mbv2"], ["--networks", "3"]])
def test_profile_detector_refuses_other_targets(flag: list[str], capsys: Any) -> None:
    assert main(["profile", "--detector", str(CONFIGS / "detnas-voc-cpu.yaml"), *flag]) == 2
    assert "drop --space" in capsys.readouterr().err
