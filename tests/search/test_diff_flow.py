"""Differentiable search end to end: a miniature of the documented CPU flow (search ->
derive -> train -> test with a measured latency), the entropy of the architecture
distribution falling, exact resume, and a miniature of every shipped config."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwnas.cli import main
from hwnas.config import parse_config
from hwnas.search.build import build_components, load_run_config, trainer_config

from .conftest import fake_store, write_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
MINI_SPACE = {"cells": 3, "channels": 4, "nodes": 2, "resolution": 8, "in_channels": 1}
MINI = {
    "seed": 2,
    "dataset": {"type": "digits", "resolution": 8, "channels": 1, "valid_fraction": 0.4, "max_train": 384},
    "search_space": {"type": "darts", **MINI_SPACE},
    "controller": {"type": "darts", "lr": 0.1},
    "weights_manager": {"type": "diff_supernet"},
    "objective": {"type": "classification"},
    "trainer": {"type": "differentiable", "epochs": 4, "batch_size": 64, "steps_per_epoch": 4, "lr": 0.05,
                "eval_batches": 1, "calib_batches": 1},
    "run": {"train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "auxiliary_weight": 0.4, "drop_path": 0.2,
                      "space": {"cells": 4, "channels": 6}}},
}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_search_derive_train_test_in_miniature(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(write_config(tmp_path / "mini.yaml", **MINI))
    run = tmp_path / "search"
    out = cli(capsys, "search", cfg, "--run-dir", str(run))
    ent = out["entropy"]
    assert len(ent) == 4 and all(a > b for a, b in zip(ent, ent[1:]))  # the distribution decides, epoch by epoch
    assert ent[-1] < 0.97 * ent[0]
    best = cli(capsys, "derive", str(run))[0]
    genotype = yaml.safe_load((run / "genotype.yaml").read_text())
    assert best["arch_str"] == genotype["arch_str"] and set(genotype["arch"]) == {"normal", "reduce"}
    assert "none" not in best["arch_str"]
    check_genotype_and_weights(cfg, run, genotype)
    trained = cli(capsys, "train", cfg, "--arch", str(run / "best.yaml"), "--out", str(tmp_path / "final"))
    assert trained["finished"] and trained["history"][-1]["train_loss"] < trained["history"][0]["train_loss"]
    res = cli(capsys, "test", cfg, "--arch", str(run / "best.yaml"), "--checkpoint",
              str(tmp_path / "final" / "checkpoint.pt"), "--profile")
    assert res["latency_ms"] > 0 and 0 <= res["test_accuracy"] <= 1 and res["arch"] == best["arch_str"]


def check_genotype_and_weights(cfg: str, run: Path, genotype: dict[str, Any]) -> None:
    """genotype.yaml holds the trained distribution and its DARTS derivation, and the
    checkpoint holds the trained supernet weights that scored the derived cell."""
    import numpy as np

    from hwnas import registry
    from hwnas.search.spaces.differentiable import weights_from_jsonable
    from hwnas.search.trainers.checkpoint import load_checkpoint

    rc = load_run_config(cfg)
    comps = build_components(rc)
    space, wm = comps.space, comps.weights_manager
    alphas = weights_from_jsonable(space.param_groups(), genotype["alphas"])
    for name, w in alphas.items():  # a distribution per edge, moved away from uniform by the search
        assert w.shape == (len(space.edge_rows), len(space.ops)) and np.allclose(w.sum(axis=1), 1.0, atol=1e-4)
        assert w.max() > 2.0 / len(space.ops)
    assert space.to_str(space.derive(alphas)) == genotype["arch_str"]  # the derivation of those weights
    state = load_checkpoint(run)
    assert state is not None
    trained, fresh = state["weights_manager"], wm.state_dict()
    moved = [k for k, v in trained.items() if v.is_floating_point() and not torch_equal(v, fresh[k])]
    assert len(moved) > len(trained) // 2  # the supernet's weights trained
    trainer = registry.get("trainer", "differentiable")(trainer_config(rc).options, components=comps, run_dir=None,
                                                         seed=rc.seed)
    trainer.load_state_dict(state)
    again = trainer._record(genotype["perfs"]["train_loss"], float("nan"))
    assert space.to_str(again.arch) == genotype["arch_str"]
    assert again.perfs["accuracy"] == pytest.approx(genotype["perfs"]["accuracy"])  # scored with these weights
    assert again.perfs["supernet_accuracy"] == pytest.approx(genotype["perfs"]["supernet_accuracy"])


def torch_equal(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_a_killed_search_resumes_to_the_same_result(tmp_path: Path) -> None:
    small = {**MINI, "controller": {"type": "gdas", "lr": 0.1},
             "trainer": {**MINI["trainer"], "epochs": 3, "steps_per_epoch": 2, "eval_batches": 0}}
    cfg = load_run_config(write_config(tmp_path / "gdas.yaml", **small))

    def trainer(run_dir: Path) -> Any:
        from hwnas import registry

        comps = build_components(cfg)
        return registry.get("trainer", "differentiable")(trainer_config(cfg).options, components=comps,
                                                         run_dir=run_dir, seed=cfg.seed)

    whole = trainer(tmp_path / "a").run()
    first = trainer(tmp_path / "b")
    first.run_epoch()
    first.checkpoint()  # killed here
    resumed = trainer(tmp_path / "b").run()
    assert resumed["resumed_at"] == 1
    assert resumed["best"]["arch_str"] == whole["best"]["arch_str"]
    assert resumed["entropy"] == pytest.approx(whole["entropy"], rel=1e-4)


def _known(role: str, name: str, **options: Any) -> dict[str, Any]:
    """Those of ``options`` that component ``name`` of ``role`` has (e.g. tune has no steps)."""
    from hwnas import registry

    fields = getattr(registry.get(role, name).Options, "__dataclass_fields__", {})
    return {k: v for k, v in options.items() if k in fields}


def shrink(data: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A shipped config cut to seconds: tiny network, a few steps, a fake cost store."""
    data = json.loads(json.dumps(data))
    data["dataset"]["max_train"] = 128
    space = data["search_space"]
    if space["type"] == "darts":
        space.update(MINI_SPACE)
    else:  # the small-network options this space has
        space.update(_known("search_space", space["type"], resolution=8, head_channels=32))
    data["dataset"]["resolution"] = space["resolution"]
    if data["trainer"]["type"] == "differentiable":
        data["trainer"].update(epochs=2, steps_per_epoch=2, warmup_epochs=min(1, data["trainer"].get(
            "warmup_epochs", 0)), eval_batches=1, calib_batches=1, batch_size=32)
    else:
        data["trainer"].update(steps=2)
        data["evaluator"].update(_known("evaluator", data["evaluator"]["type"], steps=2, batch_size=32))
    if data["objective"]["type"] == "diff_hardware":
        from hwnas.config import build_space

        sp = build_space(space["type"], {k: v for k, v in space.items() if k != "type"})
        data["objective"] = {**data["objective"], "model": None, "store": str(fake_store(tmp_path / "s.sqlite", sp)),
                             "device": "fake-cpu", "backend": "torch", "scale": 1000.0}
    return data


#: -cpu configs whose miniature lives with their own family's tests (other datasets, flows or
#: evaluators than the image-classification search this file shrinks): the test file must exist
#: and run the config by name, so removing that miniature fails here instead of going unnoticed.
OWN_MINIATURES: dict[str, str] = {
    "darts-rnn-ptb-cpu": "test_language_flow.py", "enas-rnn-ptb-cpu": "test_language_flow.py",
    "detnas-voc-cpu": "test_detection_flow.py", "ofa-ssd-voc-cpu": "test_detection_flow.py",
    "ofa-mbv3-cifar10-cpu": "test_ofa_configs.py", "ofa-mbv3-imagenet-cpu": "test_ofa_configs.py",
    "search-nb101-table-cpu": "test_nb101.py",
}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*-cpu.yaml")), ids=lambda p: p.stem)
def test_every_cpu_config_runs_in_miniature(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if path.stem in OWN_MINIATURES:
        own = Path(__file__).parent / OWN_MINIATURES[path.stem]
        assert path.stem in own.read_text(), f"{own.name} no longer runs {path.name} in miniature"
        return
    data = shrink(yaml.safe_load(path.read_text()), tmp_path)
    out = cli(capsys, "search", str(write_config(tmp_path / path.name, **data)), "--run-dir", str(tmp_path / "run"))
    assert out["best"]["arch_str"]
    assert cli(capsys, "derive", str(tmp_path / "run"), "--top", "1")[0]["arch_str"]


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*.yaml") if not p.stem.endswith("-cpu")),
                         ids=lambda p: p.stem)
def test_full_scale_configs_are_valid(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    from hwnas import registry

    if "head" in data:  # a detection flow config: its own sections (head, supernet, search, final)
        from hwnas.search.detection.flow import parse_sections

        assert parse_sections(data, path.parent)["search_space"].type
        return
    ds = data.get("dataset", {})
    if "augment" in ds and "augment" not in getattr(registry.get("dataset", ds["type"]).Options,
                                                     "__dataclass_fields__", {}):
        ds.pop("augment")  # dataset.augment arrives with the augmentation work (issue 11)
        data.get("run", {}).get("train", {}).get("dataset", {}).pop("augment", None)
    cfg = parse_config(data, source=path, base=path.parent)
    assert "search_space" in cfg


def test_profile_darts_and_bad_genotypes_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opts = [a for k, v in MINI_SPACE.items() for a in ("--space-opt", f"{k}={v}")]
    out = cli(capsys, "profile", "--space", "darts", *opts, "--backend", "fake", "--store", str(tmp_path / "s.sqlite"),
              "--networks", "2")
    from hwnas.config import build_space

    assert out["n_primitives"] == len(build_space("darts", MINI_SPACE).primitives()) and out["n_networks"] == 2
    cfg = str(write_config(tmp_path / "mini.yaml", **MINI))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"space": "darts", "arch": "normal:conv_9x9~0,sep_conv_3x3~1|skip_connect~0,"
                                   "skip_connect~2;reduce:max_pool_3x3~0,max_pool_3x3~1|skip_connect~0,skip_connect~2"}))
    assert main(["train", cfg, "--arch", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("bad.yaml: genotype.normal node 0: unknown op 'conv_9x9' (known: none, max_pool_3x3, "
                        "avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5)")
    assert "\n" not in err


def test_enas_cells_train_from_the_shared_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = shrink(yaml.safe_load((CONFIGS / "enas-cifar10-cpu.yaml").read_text()), tmp_path)
    data["run"]["train"] = {"epochs": 1, "batch_size": 32}  # the searched network itself, not a bigger one
    cfg = str(write_config(tmp_path / "enas.yaml", **data))
    cli(capsys, "search", cfg, "--run-dir", str(tmp_path / "run"))
    cli(capsys, "derive", str(tmp_path / "run"), "--top", "1")
    out = cli(capsys, "train", cfg, "--arch", str(tmp_path / "run" / "best.yaml"), "--from-supernet",
              str(tmp_path / "run"), "--out", str(tmp_path / "final"))
    assert out["finished"]
