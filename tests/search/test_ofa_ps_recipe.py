"""OFA recipe pieces of progressive shrinking (evaluator ofa_ps): one input size per step,
shared by the step's subnets and the teacher (so the teacher sees what its students see);
no weight decay on BatchNorm parameters and biases; the partial sub-phases of the depth
and expand phases (two largest choices first, at a lower learning rate), and OFA's second
channel sort when the expand phase's sub-phase ends."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hwnas.config import parse_config
from hwnas.errors import ConfigError
from hwnas.search.evaluators.ofa_ps import ProgressiveShrinkingEvaluator
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.search.weights.supernet_mbv3 import MBV3Supernet
from hwnas.testing._search import build, example_config


def _parts(tmp_path: Path, **override: object):
    return build(example_config("evaluator", "ofa_ps", tmp_path, **override))


class _Recorder(nn.Module):
    """A stand-in teacher that records the inputs it is given (its logits: zeros)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes, self.seen = classes, []  # type: ignore[var-annotated]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return torch.zeros(x.shape[0], self.classes)


@pytest.mark.timeout(60)
def test_the_teacher_sees_the_resolution_its_students_train_at(tmp_path: Path) -> None:
    """OFA's loader draws one image size per batch: the teacher and every subnet of the step
    get that batch. A teacher fed the full-size batch while a student trains at a smaller
    size would give targets the student's input cannot support."""
    ev = _parts(tmp_path, steps=2, phase_steps=[1, 1, 1, 20], phase_subnets=[1, 1, 2, 3]).evaluator
    ev.update_evaluator()  # full and kernel phases: the snapshot teacher is taken
    ev._teacher = recorder = _Recorder(ev.space.options.num_classes)
    trained: list[tuple[Any, ...]] = []
    original = ev._forward
    ev._forward = lambda x, archs: trained.append((tuple(x.shape[-2:]), *archs)) or original(x, archs)
    ev.options = replace(ev.options, steps=10)
    ev.update_evaluator()  # one depth step (2 subnets), nine expand steps (3 subnets)
    space, sizes = ev.space, recorder.seen
    assert len(sizes) == 10 and set(sizes) == {(r, r) for r in space.options.resolutions}  # both sizes drawn
    per_step = [trained[:2], *[trained[2 + 3 * i:5 + 3 * i] for i in range(9)]]
    assert len(trained) == 29
    for size, step in zip(sizes, per_step):
        for shape, arch in step:
            assert shape == size and (space.resolution_of(arch),) * 2 == size  # input, teacher and arch agree


def test_batchnorm_and_biases_get_no_weight_decay(tmp_path: Path) -> None:
    """OFA's no_decay_keys 'bn#bias': decay would pull the shared BN scales towards zero."""
    ev = _parts(tmp_path, weight_decay=1e-3).evaluator
    module = ev.weights_manager.module
    decay_of = {id(p): g["weight_decay"] for g in ev.optimizer.param_groups for p in g["params"]}
    assert sorted(decay_of) == sorted(id(p) for p in module.parameters())  # every parameter once
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            is_free = isinstance(m, nn.modules.batchnorm._BatchNorm) or name == "bias"
            assert decay_of[id(p)] == (0.0 if is_free else 1e-3), (type(m).__name__, name)
    decayed = _parts(tmp_path / "off", weight_decay=1e-3, no_decay_bn_bias=False).evaluator
    assert {g["weight_decay"] for g in decayed.optimizer.param_groups} == {1e-3}


def test_bn_weights_do_not_shrink_without_gradient(tmp_path: Path) -> None:
    """A real optimizer step with no gradient on BN: with decay off there, BN scales stay."""
    ev = _parts(tmp_path, weight_decay=0.1, momentum=0.0).evaluator
    bn = next(m for m in ev.weights_manager.module.modules() if isinstance(m, nn.BatchNorm2d))
    conv = next(m for m in ev.weights_manager.module.modules() if isinstance(m, nn.Conv2d))
    before_bn, before_conv = bn.weight.detach().clone(), conv.weight.detach().clone()
    for p in ev.weights_manager.module.parameters():
        p.grad = torch.zeros_like(p)
    ev.optimizer.step()
    torch.testing.assert_close(bn.weight.detach(), before_bn)
    assert not torch.allclose(conv.weight.detach(), before_conv)  # decayed


def _deep_evaluator(tmp_path: Path, **options: Any) -> ProgressiveShrinkingEvaluator:
    """ofa_ps on an mbv3 space with three depths and three expansions."""
    parts = _parts(tmp_path)
    space = MBV3Space(replace(parts.space.options, depths=[1, 2, 3], expansions=[3, 4, 6]))
    opts = replace(parts.evaluator.options, **options)
    return ProgressiveShrinkingEvaluator(opts, space=space, weights_manager=MBV3Supernet(space=space),
                                         dataset=parts.dataset, seed=0)


def test_depth_and_expand_first_take_only_their_two_largest_choices(tmp_path: Path) -> None:
    ev = _deep_evaluator(tmp_path, phase_steps=[1, 1, 4, 4], phase_partial_steps=[0, 0, 2, 2])
    space = ev.space

    def values(phase: str, step: int, suffix: str) -> set:
        ev.steps_done = step
        archs = [ev._sample(phase, None, ev._partial(ev.phase_at(step))) for _ in range(60)]
        return {v for a in archs for k, v in space.to_jsonable(a).items() if k.endswith(suffix)}

    assert values("depth", 2, ".depth") == {2, 3}  # OFA: depth {max, max-1} first
    assert values("depth", 4, ".depth") == {1, 2, 3}  # then every depth
    assert values("expand", 6, ".e") == {4, 6} and values("expand", 6, ".depth") == {1, 2, 3}
    assert values("expand", 8, ".e") == {3, 4, 6}


def test_a_partial_sub_phase_has_its_own_lower_learning_rate(tmp_path: Path) -> None:
    ev = _deep_evaluator(tmp_path, schedule="cosine", warmup_steps=0, phase_steps=[2, 2, 6, 2],
                         phase_lrs=[0.1, 0.05, 0.03, 0.03], phase_partial_steps=[0, 0, 2, 0], partial_lr_scale=0.5)
    lrs = []
    for step in range(12):
        ev.steps_done = step
        ev._set_lr(ev.phase_at(step))
        lrs.append(ev.optimizer.param_groups[0]["lr"])
    assert lrs[4] == pytest.approx(0.015) and lrs[5] < lrs[4]  # the sub-phase: half the rate, decaying
    assert lrs[6] == pytest.approx(0.03) and lrs[6] > lrs[7] > lrs[9]  # the rest of the phase restarts


@pytest.mark.timeout(60)
def test_channels_are_sorted_again_when_the_partial_expand_sub_phase_ends(tmp_path: Path) -> None:
    """OFA sorts before each expansion sub-phase: once when the expand phase starts (all
    channels), again when its {6, 4} sub-phase ends (expansion 4's channels kept in front)."""
    ev = _deep_evaluator(tmp_path, steps=1, phase_steps=[1, 1, 1, 4], phase_partial_steps=[0, 0, 0, 2])
    calls: list[tuple[int, Any]] = []
    original = ev.weights_manager.sort_channels

    def record(keep_expansion: Any = None) -> int:
        calls.append((ev.steps_done, keep_expansion))
        return original(keep_expansion) if keep_expansion else original()

    ev.weights_manager.sort_channels = record  # type: ignore[method-assign]
    for _ in range(7):
        ev.update_evaluator()
    assert calls == [(3, None), (5, 4)]


@pytest.mark.parametrize("partial,needle", [([0, 0, 5, 0], "shorter than the phase"),
                                            ([1, 0, 0, 0], "full phase has none"),
                                            ([0, 1], "one entry per phase")])
def test_a_bad_partial_sub_phase_is_refused_in_one_line(partial: list, needle: str) -> None:
    data = {"dataset": {"type": "synthetic", "resolution": 8, "samples": 40, "num_classes": 4},
            "search_space": {"type": "mbv3", "resolutions": [8], "width": 0.25, "num_classes": 4},
            "weights_manager": {"type": "mbv3_supernet"}, "objective": {"type": "classification"},
            "evaluator": {"type": "ofa_ps", "phase_steps": [2, 2, 5, 5], "phase_lrs": [0.1, 0.1, 0.1, 0.1],
                          "phase_partial_steps": partial}}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    msg = str(err.value)
    assert msg.startswith("evaluator.") and needle in msg and "\n" not in msg


@pytest.mark.timeout(60)
def test_a_checkpoint_from_other_optimizer_groups_is_one_line(tmp_path: Path) -> None:
    """A run written before no_decay_bn_bias (one optimizer group) resumed under it (two)
    is refused in one line naming the cause, not torch's ValueError."""
    old = _parts(tmp_path / "old", no_decay_bn_bias=False).evaluator
    new = _parts(tmp_path / "new").evaluator
    assert len(old.optimizer.param_groups) == 1 and len(new.optimizer.param_groups) == 2
    with pytest.raises(ConfigError, match=r"1 parameter group\(s\) and this run's 2.*no_decay_bn_bias") as err:
        new.load_state_dict(old.state_dict())
    assert "\n" not in str(err.value)
    same = _parts(tmp_path / "same", no_decay_bn_bias=False).evaluator
    same.load_state_dict(old.state_dict())  # the settings it was written with: resumes
