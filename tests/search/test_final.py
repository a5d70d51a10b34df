"""Final training and testing: exact resume, arch files, supernet initialisation, CLI."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
import yaml

from hwnas.cli import main
from hwnas.config import load_config
from hwnas.errors import ConfigError
from hwnas.profilers.api import measure_network
from hwnas.search import final
from hwnas.search.spaces.nb201 import NB201Space
from hwnas.search.weights.supernet_nb201 import NB201Supernet

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SPACE = {"type": "nb201", "channels": 4, "cells_per_stage": 1, "resolution": 8, "in_channels": 1}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    cfg = {"seed": 3, "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 256},
           "search_space": SPACE, "run": {"train": {"epochs": 3, "batch_size": 64, "lr": 0.1}}}
    out = {"config": tmp_path / "cfg.yaml", "arch": tmp_path / "arch.yaml", "bad": tmp_path / "bad.yaml"}
    out["config"].write_text(yaml.safe_dump(cfg))
    out["arch"].write_text(yaml.safe_dump({"space": "nb201", "arch": ARCH}))
    out["bad"].write_text(yaml.safe_dump({"space": "nb201", "arch": ARCH.replace("nor_conv_1x1", "conv_9x9")}))
    return out


def test_resumed_run_has_the_same_loss_curve(files: dict[str, Path], tmp_path: Path) -> None:
    config, arch = load_config(files["config"]), final.read_arch_file(files["arch"])
    full = final.train(config, arch, tmp_path / "full")
    assert full["finished"] and len(full["history"]) == 3
    steps_per_epoch = len(full["losses"]) // 3
    assert steps_per_epoch == 4  # 256 images / 64
    part = final.train(config, arch, tmp_path / "part", control=final.TrainControl(stop_after=1))
    assert not part["finished"] and len(part["losses"]) == steps_per_epoch
    with pytest.raises(ConfigError, match="resume it"):
        final.train(config, arch, tmp_path / "part")
    resumed = final.train(config, arch, tmp_path / "part", control=final.TrainControl(resume=True))
    assert resumed["finished"]
    assert resumed["losses"] == pytest.approx(full["losses"], rel=1e-6, abs=1e-7)
    assert full["losses"][-1] < full["losses"][0]  # it learns
    space = final.resolve_space(config)
    a = final.load_trained(space, arch.resolve(space), tmp_path / "full" / final.CHECKPOINT)
    b = final.load_trained(space, arch.resolve(space), tmp_path / "part" / final.CHECKPOINT)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_test_reports_accuracy_and_latency(files: dict[str, Path], tmp_path: Path) -> None:
    config, arch = load_config(files["config"]), final.read_arch_file(files["arch"])
    final.train(config, arch, tmp_path / "run", control=final.TrainControl(stop_after=1))
    res = final.test(config, arch, tmp_path / "run" / final.CHECKPOINT,
                     measure=partial(measure_network, backend="torch"))
    assert 0.0 <= res["test_accuracy"] <= 1.0 and res["test_n"] > 0
    assert res["latency_ms"] > 0
    with pytest.raises(ConfigError, match="checkpoint holds"):
        other = final.ArchFile(Path("x.yaml"), "nb201", [3] * 6)
        final.test(config, other, tmp_path / "run" / final.CHECKPOINT)


def test_arch_file_forms(files: dict[str, Path], tmp_path: Path) -> None:
    space = NB201Space(**{k: v for k, v in SPACE.items() if k != "type"})
    want = space.from_str(ARCH)
    p = tmp_path / "a.yaml"
    for content in ({"space": "nb201", "arch": list(want)}, {"space": "nb201", "arch": space.to_jsonable(want)},
                    {"space": "nb201", "archs": [{"arch": ARCH, "perfs": {"accuracy": 0.9}}]}):
        p.write_text(yaml.safe_dump(content))
        assert final.read_arch_file(p).resolve(space) == want
    p.write_text(yaml.safe_dump({"space": "mbv2", "arch": ARCH}))
    with pytest.raises(ConfigError, match="mbv2"):
        final.resolve_space(load_config(files["config"]), final.read_arch_file(p))


def test_from_supernet_starts_from_the_exported_subnet(files: dict[str, Path], tmp_path: Path) -> None:
    config = load_config(files["config"])
    space = final.resolve_space(config)
    wm = NB201Supernet(space=space, seed=9)
    ckpt = tmp_path / "supernet.pt"
    torch.save({"weights_manager": wm.state_dict()}, ckpt)
    arch = space.from_str(ARCH)
    model = final.model_from_supernet(config, space, arch, ckpt)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), wm.export_subnet(arch)(x))
    summary = final.train(config, final.read_arch_file(files["arch"]), tmp_path / "ft",
                          control=final.TrainControl(from_supernet=ckpt, stop_after=1))
    assert summary["epochs_done"] == 1


def test_cli_test_names_an_unknown_op(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["test", str(files["config"]), "--arch", str(files["bad"]), "--checkpoint", "missing.pt"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown op 'conv_9x9'" in err and len(err.strip().splitlines()) == 1


def test_cli_train_then_test(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["train", str(files["config"]), "--arch", str(files["arch"]), "--out", str(out),
                 "--epochs", "1"]) == 0
    assert "1/1 epochs" in capsys.readouterr().out
    assert main(["test", str(files["config"]), "--arch", str(files["arch"]), "--checkpoint",
                 str(out / "checkpoint.pt"), "--json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)
    assert 0.0 <= res["test_accuracy"] <= 1.0


def test_reads_derive_output_and_a_search_checkpoint(files: dict[str, Path], tmp_path: Path) -> None:
    """best.yaml as hwnas derive writes it (a ranked list, no space key), and
    --from-supernet pointing at a search run dir saved by the trainers' checkpoint code."""
    from hwnas.search.trainers.checkpoint import save_checkpoint

    config = load_config(files["config"])
    space = final.resolve_space(config)
    a0, a1 = space.from_str(ARCH), (3,) * 6
    records = [{"arch_str": space.to_str(a), "arch": space.to_jsonable(a), "perfs": {"accuracy": 0.5},
                "reward": 0.5, "step": 1} for a in (a0, a1)]
    best = tmp_path / "best.yaml"
    best.write_text(yaml.safe_dump(records))
    assert final.read_arch_file(best).resolve(space) == a0
    assert final.read_arch_file(best, rank=1).resolve(space) == a1
    with pytest.raises(ConfigError, match="rank 2"):
        final.read_arch_file(best, rank=2)
    wm = NB201Supernet(space=space, seed=4)
    run_dir = tmp_path / "search"
    save_checkpoint(run_dir, {"step": 1, "weights_manager": wm.state_dict(), "controller": {}}, 1)
    model = final.model_from_supernet(config, space, a1, run_dir)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), wm.export_subnet(a1)(x))
