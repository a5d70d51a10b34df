"""The OFA configs: the paper-scale ones hold OFA's schedule (phase epochs 180/120/145/145
and peak learning rates in the ratio 2.6/0.96/0.24/0.24, 1/1/2/4 subnets per step, KD weight
1) and one evaluator round per epoch; a miniature of the -cpu config runs every phase of
progressive shrinking end to end."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hwnas.config import load_config
from hwnas.search.api import run_search
from hwnas.search.trainers.checkpoint import load_checkpoint

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OFA_EPOCHS = [180, 120, 145, 145]
OFA_LRS = [2.6, 0.96, 0.24, 0.24]


@pytest.mark.parametrize("name", ["ofa-mbv3-imagenet", "ofa-mbv3-cifar10", "ofa-mbv3-imagenet-cpu",
                                  "ofa-mbv3-cifar10-cpu"])
def test_ofa_configs_follow_the_papers_schedule(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    ev, tr = cfg["evaluator"].options, cfg["trainer"].options
    assert list(ev.phases) == ["full", "kernel", "depth", "expand"] and list(ev.phase_subnets) == [1, 1, 2, 4]
    share = [s / sum(ev.phase_steps) for s in ev.phase_steps]
    assert share == pytest.approx([e / sum(OFA_EPOCHS) for e in OFA_EPOCHS], abs=0.01)
    assert [lr / ev.phase_lrs[0] for lr in ev.phase_lrs] == pytest.approx([v / 2.6 for v in OFA_LRS], rel=0.01)
    assert ev.kd_weight == 1.0 and ev.kd_teacher == "snapshot" and ev.schedule == "cosine"
    assert tr.steps * ev.steps == pytest.approx(sum(ev.phase_steps), rel=0.01)  # the run spans the schedule
    if not name.endswith("-cpu"):
        assert [s / ev.steps for s in ev.phase_steps] == OFA_EPOCHS  # one evaluator round = one epoch
        assert [s / ev.steps for s in ev.phase_partial_steps] == [0, 0, 25, 25]  # OFA's sub-phases
        assert ev.partial_lr_scale == pytest.approx(2.5e-3 / 7.5e-3)
        assert cfg["search_space"].options.width == 1.0 and list(cfg["search_space"].options.kernels) == [3, 5, 7]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["ofa-mbv3-cifar10-cpu", "ofa-mbv3-imagenet-cpu"])
def test_a_miniature_of_the_cpu_config_runs_every_phase(tmp_path: Path, name: str) -> None:
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    data["dataset"].update({"samples": 256} if data["dataset"]["type"] == "synthetic" else {"max_train": 128})
    data["evaluator"].update(phase_steps=[1, 1, 1, 2], steps=2, batch_size=16, eval_batch_size=64, warmup_steps=0)
    data["trainer"].update(steps=3, rollouts_per_step=1, checkpoint_every=1)
    cfg = tmp_path / "mini.yaml"
    cfg.write_text(yaml.safe_dump(data))
    out = run_search(cfg, run_dir=tmp_path / "run")
    assert out["steps"] == 3 and out["rollouts"] == 3
    state = load_checkpoint(tmp_path / "run")
    assert state["evaluator"]["steps_done"] == 6 and "teacher" in state["evaluator"]  # the frozen full network
    assert 0.0 <= out["best"]["perfs"]["accuracy"] <= 1.0
