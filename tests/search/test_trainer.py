"""The search loop: run directory contents, resume after a kill, NB201 latency optimum."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from hwnas.errors import ConfigError
from hwnas.search.build import build_component, build_components, load_run_config, trainer_config

from .conftest import NB201_TABLE


def make_trainer(cfg_path: Path, run_dir: Path, **over: Any) -> Any:
    cfg = load_run_config(cfg_path, **over)
    comps = build_components(cfg)
    return build_component(trainer_config(cfg), components=comps, run_dir=run_dir, seed=cfg.seed)


def history(run_dir: Path) -> list[tuple]:
    from hwnas.search.report import read_history

    return [(r.step, r.arch, r.reward, tuple(sorted(r.perfs.items()))) for r in read_history(run_dir)]


CONTROLLERS = {
    "evolution": {"type": "evolution", "population": 10, "sample_size": 3},
    "annealing": {"type": "annealing", "t0": 2.0},
    "pareto": {"type": "pareto", "population": 10},
    "rl": {"type": "rl", "hidden": 16},
    "random": {"type": "random"},
    "predictor": {"type": "predictor", "init": 5, "pool": 100, "mutations": 20, "iters": 10},
}


@pytest.mark.parametrize("name", list(CONTROLLERS))
def test_killed_search_resumes_identically(name: str, nb201_config: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = nb201_config(controller=CONTROLLERS[name])
    full = tmp_path / "full"
    make_trainer(cfg, full).run()

    killed = tmp_path / "killed"
    t = make_trainer(cfg, killed)
    real_step = t.step

    def step_then_die() -> Any:
        if t.step_index == 5:  # the checkpoint of step 4 exists; step 5 is lost
            raise KeyboardInterrupt
        return real_step()

    monkeypatch.setattr(t, "step", step_then_die)
    with pytest.raises(KeyboardInterrupt):
        t.run()
    assert len(history(killed)) == 4 * 5
    out = make_trainer(cfg, killed).run()  # fresh components, as after a restart
    assert out["resumed_at"] == 4
    assert history(killed) == history(full)
    assert len(history(full)) == 8 * 5


def test_run_dir_contents(nb201_config: Any, tmp_path: Path) -> None:
    cfg = nb201_config(objective={"type": "hardware", "table": str(NB201_TABLE), "column": "gold_6226_ms",
                                  "mode": "constraint", "budget": 6.0})
    run = tmp_path / "run"
    out = make_trainer(cfg, run).run()
    for name in ("config.yaml", "checkpoint.json", "rollouts.csv", "pareto.yaml", "pareto.png", "summary.yaml"):
        assert (run / name).is_file(), name
    df = pd.read_csv(run / "rollouts.csv")
    assert len(df) == 40 and {"arch_str", "reward", "latency_ms", "feasible"} <= set(df.columns)
    assert ((df.latency_ms <= 6.0) == (df.feasible == 1)).all()
    pareto = yaml.safe_load((run / "pareto.yaml").read_text())
    assert pareto and all(p["perfs"]["latency_ms"] <= 6.0 for p in pareto)
    assert out["best"]["perfs"]["latency_ms"] == min(df.latency_ms)
    assert load_run_config(run / "config.yaml").seed == 3  # the resolved config loads again


def test_changed_config_is_refused(nb201_config: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_trainer(nb201_config(), run).run()
    other = nb201_config("other.yaml", seed=4)
    with pytest.raises(ConfigError, match="different config"):
        make_trainer(other, run).run()
    # more steps with the same config extends the search instead
    out = make_trainer(nb201_config(), run, steps=10).run()
    assert out["resumed_at"] == 8 and out["rollouts"] == 50


def test_nb201_search_finds_latency_optimal_cell(nb201_config: Any, tmp_path: Path) -> None:
    """Evolution on the published NB201 latencies (Xeon Gold 6226 and Silver 4114) finds the
    fastest of 15,625 cells with 400 evaluations (2.6% of the space)."""
    table = pd.read_csv(NB201_TABLE)
    for column, seed in (("gold_6226_ms", 0), ("silver_4114_ms", 1)):
        cfg = nb201_config(f"{column}.yaml", seed=seed,
                           objective={"type": "hardware", "table": str(NB201_TABLE), "column": column},
                           trainer={"type": "simple", "steps": 40, "rollouts_per_step": 10, "checkpoint_every": 0,
                                    "reuse": True, "plot": False})
        out = make_trainer(cfg, tmp_path / column).run()
        best = table.loc[table[column].idxmin()]
        assert out["best"]["arch_str"] == best.arch_str
        assert out["best"]["perfs"]["latency_ms"] == pytest.approx(best[column])
