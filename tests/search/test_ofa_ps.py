"""OFA progressive shrinking (evaluator ofa_ps): phases free one dimension at a time in
OFA's order, channels are sorted once before the expand phase, distillation pulls the
subnets towards the largest one, a run resumes inside a phase exactly, and a schedule
that skips a prerequisite is refused in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hwnas.config import parse_config
from hwnas.errors import ConfigError
from hwnas.search.evaluators.ofa_ps import ProgressiveShrinkingEvaluator, distillation_loss
from hwnas.testing._search import build, example_config


def _parts(tmp_path: Path, **override: object):
    return build(example_config("evaluator", "ofa_ps", tmp_path, **override))


@pytest.mark.parametrize("phases,steps,lrs,needle", [
    (["full", "depth"], [1, 1], [0.1, 0.1], "'kernel' is missing or out of place"),
    (["kernel", "full"], [1, 1], [0.1, 0.1], "'full' is missing or out of place"),
    (["full", "kernel"], [1], [0.1, 0.1], "one entry per phase"),
])
def test_a_schedule_that_skips_a_prerequisite_is_refused(tmp_path: Path, phases: list, steps: list, lrs: list,
                                                         needle: str) -> None:
    data = {"dataset": {"type": "synthetic", "resolution": 8, "samples": 40, "num_classes": 4},
            "search_space": {"type": "mbv3", "resolutions": [8], "width": 0.25, "num_classes": 4},
            "weights_manager": {"type": "mbv3_supernet"}, "objective": {"type": "classification"},
            "evaluator": {"type": "ofa_ps", "phases": phases, "phase_steps": steps, "phase_lrs": lrs}}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    msg = str(err.value)
    assert msg.startswith("evaluator.") and needle in msg and "\n" not in msg


def test_each_phase_frees_only_its_dimensions(tmp_path: Path) -> None:
    ev = _parts(tmp_path).evaluator
    assert isinstance(ev, ProgressiveShrinkingEvaluator)
    space = ev.space
    seen: dict[str, set] = {}
    for phase in ("full", "kernel", "depth", "expand"):
        archs = [space.to_jsonable(ev._sample(phase)) for _ in range(40)]
        free = {k for k in archs[0] if len({str(a[k]) for a in archs}) > 1}
        seen[phase] = {k.rsplit(".", 1)[-1] for k in free}
    assert seen["full"] == {"resolution"}
    assert seen["kernel"] == {"resolution", "k"}
    assert seen["depth"] == {"resolution", "k", "depth"}
    assert seen["expand"] == {"resolution", "k", "depth", "e"}
    assert [ev.phase_at(s) for s in range(6)] == [0, 1, 2, 3, 3, 3]  # the last phase goes on


@pytest.mark.timeout(60)
def test_channels_are_sorted_once_when_the_expand_phase_starts(tmp_path: Path) -> None:
    ev = _parts(tmp_path, steps=1).evaluator
    calls: list[int] = []
    original = ev.weights_manager.sort_channels
    ev.weights_manager.sort_channels = lambda: calls.append(ev.steps_done) or original()
    for _ in range(5):
        stats = ev.update_evaluator()
    assert calls == [3]  # phase_steps [1, 1, 1, 1]: the expand phase starts at step 3
    assert stats["ps_phase"] == 3.0 and ev.optimizer.param_groups[0]["lr"] == 0.02


def test_distillation_loss_pulls_the_student_towards_the_teacher() -> None:
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    student = torch.zeros(2, 3, requires_grad=True)
    distillation_loss(student, teacher, 2.0).backward()
    # Gradient descent raises the logits the teacher prefers.
    assert student.grad[0, 0] < 0 < student.grad[0, 2] and student.grad[1, 1] < 0
    same = teacher.clone().requires_grad_(True)
    distillation_loss(same, teacher, 2.0).backward()
    assert same.grad.abs().max() < 1e-6  # at the teacher, nothing left to learn


@pytest.mark.timeout(60)
def test_a_run_resumes_inside_a_phase_exactly(tmp_path: Path) -> None:
    straight = _parts(tmp_path / "a", steps=1)
    for _ in range(4):
        straight.evaluator.update_evaluator()
    first = _parts(tmp_path / "b", steps=1)
    for _ in range(2):
        first.evaluator.update_evaluator()
    resumed = _parts(tmp_path / "c", steps=1)
    resumed.weights_manager.load_state_dict(first.weights_manager.state_dict())
    resumed.evaluator.load_state_dict(first.evaluator.state_dict())
    for _ in range(2):
        resumed.evaluator.update_evaluator()
    a, b = straight.weights_manager.state_dict(), resumed.weights_manager.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
