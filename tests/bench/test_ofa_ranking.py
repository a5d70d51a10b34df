"""bench/ofa_ranking.py's setting: the first runs' defaults keep their cache names, another
setting (input sizes, scored splits, the PS supernets' gradient clip) gets its own, the
held-out set of ``valid,test`` is both splits and nothing the supernets train on, and the
PS supernets can run without the clip (OFA's recipe) while uniform keeps its own."""
from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ofa_ranking.py"


def _args(**kw: object) -> argparse.Namespace:
    base = {"steps": 500, "seed": 0, "supernet_seed": None, "ps_grad_clip": 5.0}
    return argparse.Namespace(**{**base, **kw})


def test_settings_never_share_a_cache_file(tmp_path: Path) -> None:
    bench = runpy.run_path(str(BENCH))
    setting, files = bench["Setting"], bench["supernet_files"]
    first = files(_args(), tmp_path, setting())
    assert first["ps_kd"].name == "supernet-ps_kd-steps500-seed0.json"  # the first runs' caches stay valid
    new = setting((16, 12), ("valid", "test"))
    assert new.data["resolution"] == 16 and new.tag == "-r16-12-evalvalid+test"
    unclipped = files(_args(ps_grad_clip=0.0), tmp_path, new)
    assert unclipped["ps_kd"].name == "supernet-ps_kd-steps500-seed0-r16-12-evalvalid+test-psclip0.json"
    assert unclipped["uniform"] == files(_args(), tmp_path, new)["uniform"]  # uniform is not clipped otherwise
    assert len({p.name for f in (first, unclipped) for p in f.values()}) == 2 * len(first)


def test_valid_and_test_are_scored_and_held_out_from_training() -> None:
    bench = runpy.run_path(str(BENCH))
    setting = bench["Setting"]((16, 12), ("valid", "test"))
    dataset = bench["DigitsDataset"](bench["DigitsDataset"].Options(**setting.data), seed=0)
    held = setting.held_out(dataset)
    x = torch.cat([b[0] for b in held])
    assert len(x) == dataset.size("valid") + dataset.size("test") and x.shape[-1] == 16
    train = dataset.arrays("train")[0].reshape(dataset.size("train"), -1)
    rows = {r.tobytes() for r in np.round(train, 5)}
    assert not any(r.tobytes() in rows for r in np.round(x.reshape(len(x), -1).numpy(), 5))


def test_ps_supernets_take_the_clip_asked_and_uniform_keeps_its_own() -> None:
    bench = runpy.run_path(str(BENCH))
    setting = bench["Setting"]((16, 12))
    space = bench["MBV3Space"](bench["MBV3Space"].Options(**setting.space))
    dataset = bench["DigitsDataset"](bench["DigitsDataset"].Options(**setting.data), seed=0)
    ps, _, _ = bench["supernet_evaluator"]("ps_kd", space, dataset, 40, 0, grad_clip=0.0)
    uniform, _, _ = bench["supernet_evaluator"]("uniform", space, dataset, 40, 0, grad_clip=0.0)
    assert ps.options.grad_clip == 0.0 and uniform.options.grad_clip == bench["COMMON"]["grad_clip"] == 5.0


def test_max_train_caps_the_training_split_only() -> None:
    bench = runpy.run_path(str(BENCH))
    capped, full = bench["Setting"]((16, 12), ("valid", "test"), 300), bench["Setting"]((16, 12), ("valid", "test"))
    sizes = []
    for s in (capped, full):
        d = bench["DigitsDataset"](bench["DigitsDataset"].Options(**s.data), seed=0)
        sizes.append([d.size(split) for split in ("train", "valid", "test")])
    assert sizes[0][0] == 300 < sizes[1][0] and sizes[0][1:] == sizes[1][1:]  # held-out splits whole
    assert "max_train" not in full.data and full.tag == "-r16-12-evalvalid+test"  # the old caches stay valid


def test_max_train_reaches_the_scratch_runs_and_every_cache_name(tmp_path: Path, monkeypatch: object) -> None:
    bench = runpy.run_path(str(BENCH))
    scratch = sys.modules["ofa_scratch"]
    built: list[object] = []  # every dataset prepared (kept alive: compared by identity)

    class Recorded(bench["DigitsDataset"]):  # type: ignore[misc, valid-type]
        def prepare(self) -> object:
            if not any(d is self for d in built):
                built.append(self)
            return super().prepare()

    monkeypatch.setattr(scratch, "DigitsDataset", Recorded)  # type: ignore[attr-defined]
    out = tmp_path / "report.json"
    monkeypatch.setattr(sys, "argv", ["ofa_ranking.py", "--part", "scratch", "--archs", "5", "--seeds", "0",  # type: ignore[attr-defined]
                                      "--epochs", "1", "--max-train", "64", "--work", str(tmp_path), "--out", str(out)])
    assert bench["main"]() == 0
    assert [d.options.max_train for d in built] == [64] * 5  # each of the 5 scratch runs: the capped split
    assert json.loads(out.read_text())["dataset"]["max_train"] == 64
    caches = [p.name for p in tmp_path.glob("scratch-*.json")]
    assert caches and all(n.startswith("scratch-strat5-epochs1-train64-") for n in caches)
    files = bench["supernet_files"](_args(), tmp_path, bench["Setting"](max_train=64))
    assert all(p.name.endswith("-train64.json") for p in files.values())
    uncapped = bench["supernet_files"](_args(), tmp_path, bench["Setting"]())
    assert not {p.name for p in files.values()} & {p.name for p in uncapped.values()}


def test_rest_scores_the_training_images_above_the_cap_and_nothing_trained_on() -> None:
    bench = runpy.run_path(str(BENCH))
    setting, options = bench["Setting"]((16, 12), ("valid", "test", "rest"), 300), bench["DigitsDataset"].Options
    capped = bench["DigitsDataset"](options(**setting.data), seed=0)
    full = bench["DigitsDataset"](options(**{**setting.data, "max_train": 0}), seed=0)
    x = torch.cat([b[0] for b in setting.held_out(capped)])
    assert len(x) == capped.size("valid") + capped.size("test") + full.size("train") - 300
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05  # normalised like the capped split
    train = {r.tobytes() for r in np.round(capped.arrays("train")[0].reshape(300, -1), 4)}
    assert not any(r.tobytes() in train for r in np.round(x.reshape(len(x), -1).numpy(), 4))
    with pytest.raises(SystemExit, match="needs --max-train"):
        bench["Setting"]((16, 12), ("valid", "rest")).held_out(full)
