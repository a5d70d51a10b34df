"""``--nproc N`` with the tune evaluator: one driver, N pool workers, each candidate trained
once, the same perfs as one process, and a worker killed mid-evaluation (or while idle) loses nothing."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwnas.errors import ConfigError
from hwnas.search.api import SearchOverrides, run_search
from hwnas.search.build import build_component, build_components, load_run_config, trainer_config
from hwnas.search.trainers.pool import pool_applies, pooled

SPACE = {"type": "nb201", "channels": 4, "cells_per_stage": 1, "resolution": 8, "in_channels": 1}


def _config(tmp_path: Path, **trainer: Any) -> Path:
    cfg = tmp_path / "tune.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 3, "run": {"device": "cpu"},
        "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 64},
        "search_space": SPACE, "controller": {"type": "random"},
        "evaluator": {"type": "tune", "epochs": 1, "batch_size": 32, "bn_recalibrate": 1, "threads": 1},
        "objective": {"type": "classification", "max_batches": 1},
        "trainer": {"type": "simple", "steps": 2, "rollouts_per_step": 2, "checkpoint_every": 1, "plot": False,
                    **trainer}}))
    return cfg


def _perfs(out_dir: Path) -> dict[str, tuple[float, ...]]:
    rows = (out_dir / "rollouts.csv").read_text().splitlines()
    head = rows[0].split(",")
    return {",".join(r.split(",")[:head.index("reward")]): tuple(r.split(",")[head.index("reward"):])
            for r in rows[1:]}


def test_pool_splits_candidates_and_matches_one_process(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert pool_applies(load_run_config(cfg))
    one = run_search(cfg, run_dir=tmp_path / "one")
    two = run_search(cfg, run_dir=tmp_path / "two", nproc=2)
    assert "world" not in two  # one driver, not DDP ranks
    assert two["rollouts"] == one["rollouts"] == 4
    assert two["pool_workers"] == 2 and two["pool_worker_deaths"] == 0
    assert two["pool_evaluations"] == len({r for r in _perfs(tmp_path / "two")})  # each distinct candidate once
    assert _perfs(tmp_path / "two") == _perfs(tmp_path / "one")  # seeded by architecture: same perfs anywhere
    more = run_search(cfg, SearchOverrides(steps=3), run_dir=tmp_path / "two")  # its checkpoint resumes as today
    assert more["resumed_at"] == 2 and more["rollouts"] == 6


def test_killed_worker_loses_nothing(tmp_path: Path) -> None:
    cfg = load_run_config(_config(tmp_path, steps=1, rollouts_per_step=3))
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "s0r1.hold").touch()  # candidate 1 of step 0 waits there until its worker is killed
    comps = build_components(cfg)
    trainer = build_component(trainer_config(cfg), components=comps, run_dir=tmp_path / "run", seed=cfg.seed)
    result: dict[str, Any] = {}

    def search() -> None:
        try:
            with pooled(trainer, 2, trace_dir=trace):
                pool = comps.evaluator.pool.start()
                idle = pool.workers[0].process
                os.kill(idle.pid, signal.SIGKILL)  # a worker dead before any work reaches it ...
                idle.join()
                result.update(trainer.run(), pool=pool)
        except BaseException as exc:  # re-raised below, not lost with the thread
            result["error"] = exc

    t = threading.Thread(target=search, daemon=True)
    t.start()
    while not any(p.name.startswith("s0r1-") for p in trace.iterdir()):  # bounded by the test's timeout
        assert t.is_alive(), result.get("error")
        time.sleep(0.02)
    (victim,) = [p for p in trace.iterdir() if p.name.startswith("s0r1-")]
    os.kill(int(victim.read_text()), signal.SIGKILL)  # the worker dies mid-evaluation
    (trace / "s0r1.hold").unlink()
    t.join(timeout=240)
    assert not t.is_alive()
    if "error" in result:
        raise result["error"]
    assert result["rollouts"] == 3 and result["pool_worker_deaths"] == 1  # ... is replaced, not counted as a loss
    assert result["pool"].started == 4 and result["pool"].finished == {"s0r0": 1, "s0r1": 1, "s0r2": 1}
    starts = [p.name.rsplit("-", 1) for p in trace.iterdir() if "-" in p.name]
    assert len({pid for task, pid in starts if task == "s0r1"}) == 2  # retried by the replacement worker
    assert sorted(task for task, _ in starts) == ["s0r0", "s0r1", "s0r1", "s0r2"]
    rows = (tmp_path / "run" / "rollouts.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 and all(r.split(",")[0] == "0" for r in rows)


def test_pool_refuses_weights_kept_between_candidates(tmp_path: Path) -> None:
    data = yaml.safe_load(_config(tmp_path).read_text())
    data["weights_manager"] = {"type": "nb201_supernet"}
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump(data))
    cfg = load_run_config(tmp_path / "sw.yaml")
    comps = build_components(cfg)
    trainer = build_component(trainer_config(cfg), components=comps, run_dir=None, seed=cfg.seed)
    with pytest.raises(ConfigError, match=r"^--nproc 2: weights_manager nb201_supernet keeps weights") as e:
        with pooled(trainer, 2):
            pass
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_async_under_nproc_is_one_driver_and_evaluates_each_architecture_once(ray_local: Any,
                                                                              tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    cfg = tmp_path / "async.yaml"  # 32 architectures, 8 random rollouts: some are sampled twice
    cfg.write_text(yaml.safe_dump({
        "seed": 5, "run": {"device": "cpu"},
        "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 64},
        "search_space": {"type": "mbv2", "resolution": 8, "in_channels": 1, "width": 0.25, "num_classes": 10,
                         "depths": [1], "expansions": [3], "kernels": [3, 5]},
        "controller": {"type": "random"},
        "evaluator": {"type": "tune", "epochs": 1, "batch_size": 32, "max_steps": 1, "bn_recalibrate": 1},
        "objective": {"type": "classification", "max_batches": 1},
        "trainer": {"type": "async", "steps": 8, "workers": 1, "reuse": True, "trace_dir": str(trace),
                    "checkpoint_every": 4, "plot": False}}))
    out = run_search(cfg, run_dir=tmp_path / "run", nproc=2)
    assert "world" not in out and out["rollouts"] == 8  # one driver, not two DDP ranks repeating the search
    state = yaml.safe_load((tmp_path / "run" / "checkpoint.json").read_text())["state"]
    archs = [tuple(r["arch"]) for r in state["history"]]
    evaluated = [p.name.split("-")[0] for p in trace.iterdir()]
    assert len(set(archs)) < len(archs)  # duplicates were sampled ...
    assert len(evaluated) == len(set(evaluated)) == len(set(archs))  # ... and every architecture trained once
    assert sum(bool(r.get("info", {}).get("reused")) for r in state["history"]) == len(archs) - len(set(archs))
