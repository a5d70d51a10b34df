"""Issue 27, defect 3: a differentiable search under ``--nproc N`` (or torchrun) used to
run the whole search in every rank, each writing the run directory. The differentiable
trainer runs in one process, so it refuses both in one line (exit 2), before any rank
starts or anything is written."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas import registry
from hwnas.cli import main
from hwnas.errors import ConfigError
from hwnas.search.build import build_components, load_run_config, trainer_config
from hwnas.search.runtime import Runtime

from .conftest import write_config
from .test_diff_flow import MINI


@pytest.mark.timeout(60)
def test_nproc_is_refused_in_one_line_before_any_rank_starts(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "mini.yaml", **MINI)
    run = tmp_path / "run"
    assert main(["search", str(cfg), "--run-dir", str(run), "--nproc", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--nproc 2" in err and "differentiable trainer" in err
    assert not run.exists() or not any(run.iterdir())  # nothing written


@pytest.mark.timeout(60)
def test_a_distributed_runtime_is_refused_by_the_trainer_itself(tmp_path: Path) -> None:
    """Under torchrun the ranks are already started: the trainer refuses in each of them."""
    cfg = load_run_config(write_config(tmp_path / "mini.yaml", **MINI))
    comps = build_components(cfg, runtime=Runtime.cpu())
    comps.runtime = Runtime(comps.runtime.device, "off", False, 1, 2)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"^--nproc 2: the differentiable trainer runs in one process"):
        registry.get("trainer", "differentiable")(trainer_config(cfg).options, components=comps,
                                                   run_dir=tmp_path / "run", seed=0)
    assert not (tmp_path / "run").exists()
