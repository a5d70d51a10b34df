"""The DetNAS-style flow in miniature (the -cpu config scaled down), resume, config errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwnas.errors import ConfigError
from hwnas.search.detection.flow import parse_sections
from hwnas.search.detection.stages import run_flow
from hwnas.search.detection.synth import SynthSpec, write_synthetic

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def miniature(root: Path, config: str = "detnas-voc-cpu.yaml") -> dict[str, Any]:
    """A -cpu config at 32 px with a few steps on a tiny set."""
    raw = yaml.safe_load((CONFIGS / config).read_text())
    key = "resolutions" if "resolutions" in raw["search_space"] else "resolution"
    raw["search_space"].update({key: [32] if key == "resolutions" else 32, "width": 0.35})
    raw["dataset"].update(root=str(root / "voc"), resolution=32)
    raw["head"]["extra_channels"] = [32, 16]
    raw["supernet"].update(steps=4, batch_size=8, warmup_steps=1)
    raw["controller"].update(population=2, sample_size=2)
    raw["search"].update(rollouts=4, batch=2, eval_images=6, eval_batch_size=6, calib_batches=1)
    raw["final"].update(steps=3, batch_size=8, warmup_steps=1)
    return raw


@pytest.mark.slow
@pytest.mark.parametrize("config", ["detnas-voc-cpu.yaml", "ofa-ssd-voc-cpu.yaml"])
def test_search_derive_train_test_then_resume(config: str, tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", SynthSpec(n_train=16, n_val=6, n_test=6, size=32, seed=1))
    raw, out = miniature(data, config), tmp_path / "run"
    priced: list[int] = []

    def pricer(items: Any) -> float:  # a deterministic stand-in for a latency table: MACs-like size
        priced.append(len(items))
        return float(sum(p.c_in * p.c_out * p.h * p.w for p in items)) * 1e-6

    res = run_flow(raw, out, pricer=pricer)
    search = json.loads((out / "search.json").read_text())
    assert len(search["history"]) == 4 and all("map50" in h["perfs"] and "latency_ms" in h["perfs"]
                                               for h in search["history"])
    assert res["arch"] == max(search["history"], key=lambda h: h["reward"])["arch"]
    test = res["test"]
    assert test["images"] == 6 and 0.0 <= test["map50"] <= 1.0 and len(test["ap50_per_class"]) == 3
    assert res["predicted_latency_ms"] > 0 and res["primitives"] == priced[-1]
    assert 0.0 <= res["baseline_mean_box"]["map50"] <= 1.0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_flow(raw, out, pricer=pricer)  # every stage finished: nothing retrained
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "test.json"} == \
        {k: v for k, v in stamps.items() if k != "test.json"}
    assert again["test"] == test


def test_paper_and_cpu_configs_parse() -> None:
    for name in ("detnas-voc.yaml", "detnas-voc-cpu.yaml", "ofa-ssd-voc.yaml", "ofa-ssd-voc-cpu.yaml"):
        sec = parse_sections(yaml.safe_load((CONFIGS / name).read_text()), CONFIGS)
        assert sec["search"].rollouts >= 12 and sec["head"].nms_iou == 0.45
        assert sec["supernet"].sampling == ("sandwich" if name.startswith("ofa") else "uniform")
    for name, res in (("detnas-voc.yaml", 300), ("ofa-ssd-voc.yaml", 320)):
        paper = parse_sections(yaml.safe_load((CONFIGS / name).read_text()), CONFIGS)
        assert paper["dataset"].options.resolution == res and paper["head"].ratios == (2.0, 3.0)
        assert paper["dataset"].options.augment.expand == 4.0 and paper["dataset"].options.train_split == "trainval"


@pytest.mark.parametrize("change,message", [
    ({"serach": {}}, "serach: unknown section"),
    ({"search": {"rollouts": 0}}, "search.rollouts"),
    ({"head": {"nms_iou": 2.0}}, "head.nms_iou"),
])
def test_bad_config_is_one_line(change: dict[str, Any], message: str) -> None:
    raw = yaml.safe_load((CONFIGS / "detnas-voc-cpu.yaml").read_text())
    raw.update(change)
    with pytest.raises(ConfigError) as exc:
        parse_sections(raw, CONFIGS)
    assert message in str(exc.value) and "\n" not in str(exc.value)
