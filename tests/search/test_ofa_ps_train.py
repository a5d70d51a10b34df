"""Training side of OFA progressive shrinking (evaluator ofa_ps): the learning rate
restarts in every phase, the teacher can be a checkpoint of the same space (anything else
is one line), a search killed inside a phase resumes to the weights of an uninterrupted
one, and the supernet trains under DDP with two gloo ranks."""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from hwnas.errors import ConfigError
from hwnas.search import final
from hwnas.search.api import run_search
from hwnas.search.evaluators.ofa_ps import ProgressiveShrinkingEvaluator
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.search.trainable import build_model
from hwnas.search.trainers.checkpoint import load_checkpoint
from hwnas.testing._search import build, example_config


def _parts(tmp_path: Path, **override: object):
    return build(example_config("evaluator", "ofa_ps", tmp_path, **override))


def _save_subnet(path: Path, space: MBV3Space, arch: Any, model: torch.nn.Module | None = None) -> Path:
    """A checkpoint in `hwnas train`'s format holding ``model`` (fresh weights by default)."""
    model = model or build_model(space, arch)
    torch.save({"format": final.CHECKPOINT_FORMAT, "space": space.name, "arch": list(arch),
                "arch_str": space.to_str(arch), "model": model.state_dict()}, path)
    return path


def test_the_learning_rate_restarts_its_cosine_in_every_phase(tmp_path: Path) -> None:
    ev = _parts(tmp_path, schedule="cosine", phase_steps=[4, 4, 4, 4], phase_lrs=[0.1, 0.04, 0.02, 0.02],
                warmup_steps=0).evaluator
    lrs = []
    for step in range(16):
        ev.steps_done = step
        ev._set_lr(ev.phase_at(step))
        lrs.append(ev.optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.1) and lrs[4] == pytest.approx(0.04) and lrs[8] == pytest.approx(0.02)
    assert lrs[0] > lrs[1] > lrs[2] > lrs[3] > 0 and lrs[4] > lrs[5] > lrs[7]  # decays within a phase


def test_a_checkpoint_teacher_gives_the_soft_targets(tmp_path: Path) -> None:
    space = _parts(tmp_path / "probe").space
    largest = tuple(int(d.choices.index(max(d.choices))) for d in space.decisions)
    torch.manual_seed(3)
    teacher = build_model(space, largest).eval()
    path = _save_subnet(tmp_path / "teacher.pt", space, largest, teacher)
    ev = _parts(tmp_path, teacher=str(path)).evaluator
    x = torch.randn(4, space.options.in_channels, 12, 12)
    with torch.no_grad():
        want = copy.deepcopy(teacher).train()(x)  # OFA's teacher normalises with the batch's statistics
    torch.testing.assert_close(ev._teacher_logits(x, "kernel"), want)
    assert ev._teacher_logits(x, "full") is None  # the full phase trains on labels alone
    before = [p.detach().clone() for p in ev._teacher.parameters()]
    ev.update_evaluator()
    assert all(torch.equal(a, b) for a, b in zip(before, ev._teacher.parameters()))  # the teacher is frozen


def test_a_teacher_of_another_space_or_shape_is_refused_in_one_line(tmp_path: Path) -> None:
    space = _parts(tmp_path / "probe").space
    arch = space.validate([0] * len(space.decisions))
    wider = MBV3Space(replace(space.options, width=0.5))
    other = tmp_path / "other.pt"
    torch.save({"format": final.CHECKPOINT_FORMAT, "space": "nb201", "arch": [0] * 6, "model": {}}, other)
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    cases = [(tmp_path / "missing.pt", "no such file"), (other, "space 'nb201', not 'mbv3'"),
             (plain, "not a `hwnas train` checkpoint"),
             (_save_subnet(tmp_path / "wide.pt", space, arch, build_model(wider, arch)), "not a subnet of this mbv3")]
    for path, needle in cases:
        with pytest.raises(ConfigError) as err:
            _parts(tmp_path, teacher=str(path))
        msg = str(err.value)
        assert msg.startswith(f"evaluator.teacher: {path}") and needle in msg and "\n" not in msg, msg


def _search_config(tmp_path: Path, search_steps: int = 5, **evaluator: Any) -> Path:
    cfg = example_config("evaluator", "ofa_ps", tmp_path, **evaluator).to_dict()
    cfg.pop("run", None)
    cfg.update(controller={"type": "random"},
               trainer={"type": "simple", "steps": search_steps, "rollouts_per_step": 1, "evaluator_updates": 1,
                        "checkpoint_every": 1, "plot": False})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.timeout(120)
def test_a_search_killed_inside_a_phase_resumes_to_the_same_weights(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Phases end after supernet steps 2, 5, 7; two steps per search step. The kill comes in
    # the third search step, after the checkpoint at step 4 (inside the kernel phase); the
    # resumed run then crosses into depth and expand (channels sorted at step 7).
    cfg = _search_config(tmp_path, phase_steps=[2, 3, 2, 2], steps=2)
    straight = run_search(cfg, run_dir=tmp_path / "straight")
    original = ProgressiveShrinkingEvaluator._next_batch

    def killed(self: ProgressiveShrinkingEvaluator) -> Any:
        if self.steps_done == 5:
            raise KeyboardInterrupt("killed inside the kernel phase")
        return original(self)

    monkeypatch.setattr(ProgressiveShrinkingEvaluator, "_next_batch", killed)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, run_dir=tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed")["evaluator"]["steps_done"] == 4
    monkeypatch.setattr(ProgressiveShrinkingEvaluator, "_next_batch", original)
    resumed = run_search(cfg, run_dir=tmp_path / "resumed")
    assert resumed["resumed_at"] == 2
    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(tmp_path / "resumed")
    assert a["evaluator"]["steps_done"] == b["evaluator"]["steps_done"] == 10
    for k, v in a["weights_manager"].items():
        torch.testing.assert_close(b["weights_manager"][k], v, msg=k)
    assert straight["rollouts"] == resumed["rollouts"] == 5
    assert [r["reward"] for r in a["history"]] == pytest.approx([r["reward"] for r in b["history"]])


@pytest.mark.slow
def test_progressive_shrinking_trains_under_ddp(tmp_path: Path) -> None:
    cfg = _search_config(tmp_path, 2, phase_steps=[1, 1, 1, 1], steps=2)
    out = run_search(cfg, run_dir=tmp_path / "run", nproc=2)
    assert out["world"] == 2 and out["rank"] == 0 and out["rollouts"] == 2
    state = load_checkpoint(tmp_path / "run")
    assert state["evaluator"]["steps_done"] == 4  # every phase, expand sorted under DDP
    assert all(torch.isfinite(v).all() for v in state["weights_manager"].values() if v.is_floating_point())
    assert all(0.0 <= r["perfs"]["accuracy"] <= 1.0 for r in out["pareto"])


@pytest.mark.timeout(60)
def test_the_teacher_is_the_full_network_frozen_when_its_phase_ends(tmp_path: Path) -> None:
    ev = _parts(tmp_path, steps=1, phase_steps=[2, 1, 1, 2], phase_subnets=[1, 1, 2, 3]).evaluator
    sampled: list[int] = []
    original = ev._sample
    ev._sample = lambda *args: sampled.append(ev.steps_done) or original(*args)
    x = torch.randn(4, ev.space.options.in_channels, 12, 12)
    for _ in range(2):
        ev.update_evaluator()
    assert ev._teacher is None  # the full phase trains the network that becomes the teacher
    full = ev.weights_manager.export_subnet(ev.weights_manager.extreme_arch("max")).train()  # OFA: BN on the batch
    with torch.no_grad():
        want = full(x)
    for _ in range(4):
        ev.update_evaluator()
    torch.testing.assert_close(ev._teacher_logits(x, "depth"), want)  # frozen while the supernet trains on
    # phase_subnets: 1 (full, at a sampled resolution), 1 (kernel), 2 (depth), 3 (expand) per step
    assert sampled == [0, 1, 2, 3, 3, 4, 4, 4, 5, 5, 5]


@pytest.mark.timeout(60)
def test_the_full_phase_trains_the_largest_network_at_every_resolution(tmp_path: Path) -> None:
    """OFA samples the image size per batch in every phase, the full one included: the
    full phase's steps train the largest network at each of the space's resolutions."""
    ev = _parts(tmp_path, steps=12, phase_steps=[12, 1, 1, 1]).evaluator
    trained: list[Any] = []
    original = ev._forward
    ev._forward = lambda x, archs: trained.extend(archs) or original(x, archs)
    ev.update_evaluator()
    space, largest = ev.space, ev.weights_manager.extreme_arch("max")
    assert len(trained) == 12  # one subnet per step in the full phase
    assert {space.resolution_of(a) for a in trained} == set(space.options.resolutions)
    assert all(list(a)[1:] == list(largest)[1:] for a in trained)  # everything but the resolution at its largest


@pytest.mark.timeout(60)
def test_the_teacher_normalises_with_the_batch_statistics(tmp_path: Path) -> None:
    """OFA runs its teacher in train mode: with elastic resolution the running BN
    statistics mix every input size, so the soft targets use each batch's own."""
    ev = _parts(tmp_path, steps=2, phase_steps=[2, 1, 1, 1]).evaluator
    ev.update_evaluator()  # the full phase ends: the teacher is frozen at the next step
    ev.options = replace(ev.options, steps=1)
    ev.update_evaluator()
    teacher = ev._teacher
    assert teacher is not None
    x = 3.0 * torch.randn(8, ev.space.options.in_channels, 12, 12) + 1.0  # far from the running statistics
    with torch.no_grad():
        batch_stats = copy.deepcopy(teacher).train()(x)
        running_stats = copy.deepcopy(teacher).eval()(x)
    soft = ev._teacher_logits(x, "kernel")
    torch.testing.assert_close(soft, batch_stats)
    assert not torch.allclose(soft, running_stats, atol=1e-3)
