"""DistributedDataParallel on the CPU (gloo): 2 processes with batch B follow the loss
curve of 1 process with batch 2B; rank 0 alone writes; resume works across modes; a
supernet search runs with every rank on the same subnets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hwnas.search import final
from hwnas.search.api import SearchOverrides, run_search
from hwnas.search.datasets.pipeline import RankBatchSampler

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SPACE = {"type": "nb201", "channels": 4, "cells_per_stage": 1, "resolution": 8, "in_channels": 1}

#: Stated tolerances of the DDP-vs-single-process loss curves. Without BatchNorm the two
#: compute the same gradients: equal to float rounding. With BatchNorm (the real nb201
#: network) each rank normalises its 32 images by their own statistics, not the 64 of the
#: global batch (SyncBatchNorm needs CUDA): each epoch's mean loss within 5%, every step
#: within 15% (a 4-channel network on 32 images per rank is the worst case for BN noise).
EXACT_TOL = 1e-4
BN_EPOCH_TOL = 0.05
BN_STEP_TOL = 0.15


def test_rank_batches_partition_the_global_batch() -> None:
    whole = list(RankBatchSampler(70, 20, shuffle=True, seed=5))
    parts = [list(RankBatchSampler(70, 10, shuffle=True, seed=5, rank=r, world=2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == len(whole) == 4
    for step, batch in enumerate(whole):
        assert parts[0][step] + parts[1][step] == batch  # the same global batch, cut in two
    dropped = [list(RankBatchSampler(70, 10, shuffle=True, seed=5, rank=r, world=2, drop_last=True)) for r in range(2)]
    assert len(dropped[0]) == len(dropped[1]) == 3
    assert list(RankBatchSampler(5, 2, shuffle=False)) == [[0, 1], [2, 3], [4]]
    ref = torch.randperm(70, generator=torch.Generator().manual_seed(5)).tolist()
    assert sum(whole, []) == ref  # single process: the order torch's RandomSampler gives


@pytest.mark.slow
def test_ddp_gloo_loss_curve_equals_double_batch_without_bn() -> None:
    from hwnas.run_section import ExecOptions
    from hwnas.search.distributed import spawn
    from hwnas.search.runtime import Runtime
    from hwnas.testing.ddp import bn_free_losses

    one = bn_free_losses(Runtime.cpu(), 64)
    two = spawn(bn_free_losses, 2, ExecOptions(device="cpu"), 32)
    assert len(one) == len(two) == 8
    np.testing.assert_allclose(two, one, atol=EXACT_TOL)
    assert one[-1] < one[0]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_spawn_returns_a_result_larger_than_a_pipe_buffer() -> None:
    """A reply of megabytes (a long run's per-step losses) must not deadlock the spawner:
    a pipe holds 64 KiB, and a rank blocked in writing it never exits to be joined."""
    from hwnas.run_section import ExecOptions
    from hwnas.search.distributed import spawn
    from hwnas.testing.ddp import rank_sum_range

    n = 200_000  # about 2.6 MB of JSON
    out = spawn(rank_sum_range, 2, ExecOptions(device="cpu"), n)
    assert len(out) == n
    assert out[:3] == [0.0, 3.0, 6.0] and out[-1] == 3.0 * (n - 1)  # rank 0 x1 + rank 1 x2


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    def cfg(batch: int) -> Path:
        p = tmp_path / f"cfg{batch}.yaml"
        p.write_text(yaml.safe_dump({
            "seed": 1, "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 384},
            "search_space": SPACE, "run": {"device": "cpu", "train": {"epochs": 2, "batch_size": batch, "lr": 0.05}}}))
        return p
    arch = tmp_path / "arch.yaml"
    arch.write_text(yaml.safe_dump({"space": "nb201", "arch": ARCH}))
    return {"b64": cfg(64), "b32": cfg(32), "arch": arch}


@pytest.mark.slow
def test_ddp_two_processes_match_one_with_double_batch(files: dict[str, Path], tmp_path: Path) -> None:
    one = final.train_files(files["b64"], files["arch"], out=tmp_path / "one")
    two = final.train_files(files["b32"], files["arch"], out=tmp_path / "two", nproc=2)
    assert two["world"] == 2 and one["world"] == 1
    assert len(two["losses"]) == len(one["losses"]) == 12  # 384 images / 64 per global step x 2 epochs
    a, b = np.asarray(one["losses"]), np.asarray(two["losses"])
    step_rel = np.abs(b - a) / a
    epoch_rel = np.abs(b.reshape(2, -1).mean(1) - a.reshape(2, -1).mean(1)) / a.reshape(2, -1).mean(1)
    assert step_rel.max() < BN_STEP_TOL and epoch_rel.max() < BN_EPOCH_TOL, (step_rel, epoch_rel)
    assert two["losses"][-1] < two["losses"][0]  # and it learns
    v1, v2 = one["history"][-1]["valid_accuracy"], two["history"][-1]["valid_accuracy"]
    assert abs(v1 - v2) < 0.1  # the all-reduced validation covers the same images
    written = sorted(p.name for p in (tmp_path / "two").iterdir() if p.name != "tensorboard")  # rank 0's TB logs
    assert written == ["checkpoint.pt", "summary.json"]
    # the DDP checkpoint holds the plain module: a single process resumes it
    ck = torch.load(tmp_path / "two" / final.CHECKPOINT, weights_only=True)
    assert not any(k.startswith("module.") for k in ck["model"])
    more = final.train_files(files["b32"], files["arch"], out=tmp_path / "two", resume=True,
                             overrides={"epochs": 3})
    assert more["epochs_done"] == 3 and more["losses"][:12] == pytest.approx(two["losses"])


@pytest.mark.slow
def test_supernet_search_under_ddp(tmp_path: Path) -> None:
    cfg = tmp_path / "search.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 2, "run": {"device": "cpu"},
        "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 256},
        "search_space": SPACE, "weights_manager": {"type": "nb201_supernet"},
        "controller": {"type": "random"},
        "evaluator": {"type": "mepa", "steps": 3, "batch_size": 16, "eval_batches": 1, "eval_batch_size": 64,
                      "sampling": "sandwich"},
        "objective": {"type": "classification"},
        "trainer": {"type": "simple", "steps": 3, "rollouts_per_step": 2, "evaluator_updates": 1,
                    "checkpoint_every": 1, "plot": False}}))
    out = run_search(cfg, run_dir=tmp_path / "run", nproc=2)
    assert out["world"] == 2 and out["rollouts"] == 6 and out["rank"] == 0
    assert (tmp_path / "run" / "checkpoint.json").is_file()
    assert all(0.0 <= r["perfs"]["accuracy"] <= 1.0 for r in out["pareto"])
    again = run_search(cfg, SearchOverrides(steps=4), run_dir=tmp_path / "run")  # resumed by a single process
    assert again["resumed_at"] == 3 and again["rollouts"] == 8
