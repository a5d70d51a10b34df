"""The async trainer on a local Ray instance: every rollout finished once, resumable, a
worker killed mid-evaluation costs nothing, bad addresses and setups are one line."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwnas.cli import main
from hwnas.errors import ConfigError
from hwnas.search.api import SearchOverrides, run_search

SPACE = {"type": "nb201", "channels": 4, "cells_per_stage": 1, "resolution": 8, "in_channels": 1}


def _config(tmp_path: Path, **trainer: Any) -> Path:
    cfg = tmp_path / "async.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 4, "run": {"device": "cpu"},
        "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 128},
        "search_space": SPACE, "controller": {"type": "evolution", "population": 4, "sample_size": 2},
        "evaluator": {"type": "tune", "epochs": 1, "batch_size": 32, "bn_recalibrate": 1},
        "objective": {"type": "classification", "max_batches": 1},
        "trainer": {"type": "async", "steps": 6, "workers": 2, "checkpoint_every": 2, "plot": False, **trainer}}))
    return cfg


@pytest.mark.slow
def test_async_search_completes_and_resumes(ray_local: Any, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = run_search(cfg, run_dir=tmp_path / "run")
    assert out["rollouts"] == 6 and out["steps"] == 6
    hist = yaml.safe_load((tmp_path / "run" / "summary.yaml").read_text())
    assert hist["rollouts"] == 6
    rows = (tmp_path / "run" / "rollouts.csv").read_text().splitlines()
    assert len(rows) == 7  # header + every rollout once
    more = run_search(cfg, SearchOverrides(steps=8), run_dir=tmp_path / "run")
    assert more["resumed_at"] == 6 and more["rollouts"] == 8


@pytest.mark.slow
def test_killed_worker_loses_nothing(ray_local: Any, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    hold = trace / "2.hold"
    hold.touch()  # rollout 2's task waits there until the test has killed its worker
    cfg = _config(tmp_path, trace_dir=str(trace), steps=5, checkpoint_every=1)
    result: dict[str, Any] = {}

    def search() -> None:
        try:
            result.update(run_search(cfg, run_dir=tmp_path / "run"))
        except BaseException as exc:  # re-raised below, not lost with the thread
            result["error"] = exc

    t = threading.Thread(target=search, daemon=True)
    t.start()
    while not any(p.name.startswith("2-") for p in trace.iterdir()):  # bounded by the test's timeout
        assert t.is_alive(), result.get("error")
        time.sleep(0.05)
    (victim,) = [p for p in trace.iterdir() if p.name.startswith("2-")]
    os.kill(int(victim.read_text()), signal.SIGKILL)  # rollout 2's worker dies mid-evaluation
    hold.unlink()  # its retry runs through
    t.join(timeout=600)
    assert not t.is_alive()
    if "error" in result:
        raise result["error"]
    assert result["rollouts"] == 5
    starts = [p.name.split("-") for p in trace.iterdir()]
    assert len({pid for step, pid in starts if step == "2"}) >= 2  # retried in another worker
    ckpt_steps = sorted(int(r.split(",")[0]) for r in (tmp_path / "run" / "rollouts.csv").read_text().splitlines()[1:]
                        if r.split(",")[0].isdigit())
    assert ckpt_steps == [0, 1, 2, 3, 4]  # every rollout finished exactly once, the killed one included


@pytest.mark.timeout(120)  # an address nobody answers fails at once, not after the test's timeout
def test_async_refuses_shared_weights_and_bad_addresses(tmp_path: Path, capsys: Any) -> None:
    cfg = _config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["weights_manager"] = {"type": "nb201_supernet"}
    data["evaluator"] = {"type": "mepa"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="async .*cannot train shared"):
        run_search(bad, run_dir=tmp_path / "x")
    assert main(["search", str(cfg), "--run-dir", str(tmp_path / "y"), "--ray-address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--ray-address 127.0.0.1:9: no Ray cluster answers" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y" / "checkpoint.json").exists()


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hwnas.errors import DependencyError
    from hwnas.raycluster import ray_module

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(DependencyError, match=r"ray is not installed .*pip install 'hwnas\[ray\]'"):
        ray_module()
