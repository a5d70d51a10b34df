"""Elastic width of the mbv3 space (``stage_widths``): decisions appended after the others
(the default space is unchanged), strings round-trip, every sampled network's blocks are
among the primitives, a candidate computes exactly its exported network, sorting a stage's
channels keeps the full network's function, and progressive shrinking frees the widths only
in its width phase, sorting the stages once when it starts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError, ValidationError
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.search.weights.supernet_mbv3 import MBV3Supernet
from hwnas.testing._search import build, example_config
from tests.search.test_supernet_mbv3 import _randomise

WIDTHS = [0.5, 0.75, 1.0]


def _space() -> MBV3Space:
    return MBV3Space(resolutions=[16, 12], width=0.5, num_classes=10, in_channels=1, depths=[1, 2],
                     kernels=[3, 5], stage_widths=WIDTHS)


def test_widths_are_decisions_of_their_own_and_strings_round_trip() -> None:
    plain = MBV3Space(resolutions=[16], width=0.5, num_classes=10, in_channels=1, depths=[1, 2], kernels=[3, 5])
    space = _space()
    assert [d.name for d in space.decisions[:len(plain.decisions)]] == [d.name for d in plain.decisions]
    assert [d.name for d in space.decisions[len(plain.decisions):]] == [f"s{s}.w" for s in range(5)]
    assert not any(d.name.endswith(".w") for d in plain.decisions)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        arch = space.sample(rng)
        text = space.to_str(arch)
        assert space.canonical(space.from_str(text)) == space.canonical(arch)
        widths = space.stage_widths_of(arch)
        assert text.split("|")[1].startswith(f"d{len(space.stage_choices(arch)[0])}w{widths[0]:g}:")
        net = space.to_network(arch)
        assert [n.c_out for n in net.nodes[2:-4]][-1] == space.stage_channels(arch)[-1] == net.nodes[-4].c_in
        seen.update(space.stage_channels(arch))
    assert len(seen) > 5  # narrow and wide stages both drawn
    with pytest.raises(ValidationError, match="stage widths"):
        space.from_str(plain.to_str(plain.sample(rng)).replace("r16", "r12"))  # no widths in the string


def test_every_sampled_network_is_made_of_listed_primitives() -> None:
    space = _space()
    keys = {p.key for p in space.primitives()}
    rng = np.random.default_rng(1)
    for _ in range(30):
        assert {p.key for p in space.to_network(space.sample(rng)).nodes} <= keys


@pytest.mark.timeout(60)
def test_a_narrow_candidate_equals_its_exported_network() -> None:
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    _randomise(wm.module)
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(5)] + [wm.extreme_arch("min")]
    for arch in archs:
        r = space.resolution_of(arch)
        x = torch.randn(2, 1, r, r, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            a = wm.assemble_candidate(Rollout(arch)).eval()(x)
            b = wm.export_subnet(arch)(x)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=space.to_str(arch))


@pytest.mark.timeout(60)
def test_sorting_stage_channels_keeps_the_full_network_and_puts_important_channels_first() -> None:
    space = _space()
    wm = MBV3Supernet(space=space, seed=0)
    _randomise(wm.module)
    largest = wm.extreme_arch("max")
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = wm.assemble_candidate(Rollout(largest)).eval()(x)
    assert wm.sort_stage_channels() == 5
    with torch.no_grad():
        after = wm.assemble_candidate(Rollout(largest)).eval()(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    for blocks in wm.module.stages:
        importance = sum(b.project.weight.abs().sum(dim=(1, 2, 3)) for b in blocks)
        assert torch.all(importance[:-1] >= importance[1:])


def test_the_width_phase_frees_widths_and_sorts_stages_once(tmp_path: Path) -> None:
    cfg = example_config("evaluator", "ofa_ps", tmp_path, phases=["full", "kernel", "depth", "expand", "width"],
                         phase_steps=[1, 1, 1, 1, 2], phase_lrs=[0.05, 0.02, 0.02, 0.02, 0.02], steps=1,
                         eval_batch_size=8)
    data = cfg.to_dict()
    data["search_space"]["stage_widths"] = [0.5, 1.0]
    from hwnas.config import parse_config

    ev = build(parse_config(data, base=tmp_path)).evaluator
    widths = {p: {str(ev.space.stage_widths_of(ev._sample(p))) for _ in range(30)} for p in ("expand", "width")}
    assert len(widths["expand"]) == 1 and len(widths["width"]) > 1
    calls: list[int] = []
    original = ev.weights_manager.sort_stage_channels
    ev.weights_manager.sort_stage_channels = lambda: calls.append(ev.steps_done) or original()
    for _ in range(6):
        ev.update_evaluator()
    assert calls == [4]
    with pytest.raises(ConfigError, match="'expand' is missing or out of place"):
        parse_config({**data, "evaluator": {**data["evaluator"], "phases": ["full", "kernel", "depth", "width"],
                                            "phase_steps": [1, 1, 1, 1], "phase_lrs": [0.1] * 4}}, base=tmp_path)
