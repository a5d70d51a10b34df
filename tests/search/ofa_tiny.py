"""A tiny trained OFA supernet run (mbv3 on 10x10 digits, progressive shrinking + KD), made
once per test session and shared by the specialisation and accuracy-predictor tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwnas.cli import main

SPACE: dict[str, Any] = {"type": "mbv3", "resolutions": [10, 8], "width": 0.25, "in_channels": 1, "num_classes": 10,
                         "depths": [1, 2], "expansions": [3, 6], "kernels": [3, 5]}
CONFIG: dict[str, Any] = {
    "seed": 0,
    "dataset": {"type": "digits", "resolution": 10, "channels": 1, "valid_fraction": 0.2, "test_fraction": 0.2},
    "search_space": SPACE,
    "controller": {"type": "random"},
    "weights_manager": {"type": "mbv3_supernet"},
    "evaluator": {"type": "ofa_ps", "phase_steps": [12, 6, 6, 6], "phase_lrs": [0.05, 0.02, 0.02, 0.02],
                  "steps": 6, "batch_size": 64, "eval_batches": 1, "eval_batch_size": 128, "calib_batches": 1},
    "objective": {"type": "classification"},
    "trainer": {"type": "simple", "steps": 5, "rollouts_per_step": 1, "evaluator_updates": 1, "plot": False},
    "run": {"device": "cpu", "train": {"epochs": 1, "batch_size": 64, "lr": 0.02}},
}


def tiny_run(base: Path) -> Path:
    """The run directory under ``base`` (trained on first use: 30 supernet steps)."""
    run = base / "ofa-tiny-run"
    if (run / "checkpoint.json").is_file():
        return run
    cfg = base / "ofa-tiny.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    assert main(["search", str(cfg), "--run-dir", str(run), "--restart"]) == 0
    return run
