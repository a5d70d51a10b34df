"""Fault models: the bits they corrupt, in float32 and int8 words, weights and feature maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.config import parse_config
from hwnas.errors import ConfigError
from hwnas.search.robust.faults import FaultOptions, accuracy_under_faults, corrupt, inject, parse_faults


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().contiguous().view(torch.int32).numpy().view(np.uint32)


def test_float32_flip_of_every_bit_inverts_each_word() -> None:
    t = torch.randn(257)
    out = corrupt(t, kind="bitflip", rate=1.0, fmt="float32", rng=_rng())
    assert np.array_equal(_bits(out), ~_bits(t))


def test_float32_stuck_at_0_zeroes_and_stuck_at_1_sets_all_bits() -> None:
    t = torch.randn(64)
    assert torch.equal(corrupt(t, kind="stuck_at_0", rate=1.0, fmt="float32", rng=_rng()), torch.zeros(64))
    ones = corrupt(t, kind="stuck_at_1", rate=1.0, fmt="float32", rng=_rng())
    assert np.all(_bits(ones) == np.uint32(0xFFFFFFFF))


def test_int8_faults_move_values_by_whole_quantisation_steps() -> None:
    t = torch.linspace(-1.0, 1.0, 101)
    scale = 1.0 / 127
    q = torch.round(t / scale)
    flipped = corrupt(t, kind="bitflip", rate=1.0, fmt="int8", rng=_rng())  # ~q = -q - 1 in two's complement
    assert torch.allclose(flipped, (-q - 1) * scale, atol=1e-6)
    stuck = corrupt(t, kind="stuck_at_1", rate=1.0, fmt="int8", rng=_rng())  # every bit 1: the word -1
    assert torch.allclose(stuck, torch.full_like(t, -scale), atol=1e-6)
    small = corrupt(t, kind="bitflip", rate=0.05, fmt="int8", rng=_rng(3))
    hit = small != t
    words = (small[hit] / scale).numpy()
    assert 0 < hit.sum() < len(t) and np.allclose(words, np.round(words), atol=1e-3)
    assert np.abs(words).max() <= 128


def test_the_share_of_flipped_bits_is_the_rate() -> None:
    t = torch.randn(20_000)
    out = corrupt(t, kind="bitflip", rate=0.01, fmt="float32", rng=_rng(1))
    flipped = np.unpackbits((_bits(out) ^ _bits(t)).view(np.uint8)).sum()
    assert abs(flipped / (20_000 * 32) - 0.01) < 0.001


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def test_weight_faults_are_seeded_per_layer_rated_and_restored() -> None:
    net = _net()
    clean = [p.detach().clone() for p in net.parameters()]
    fault = FaultOptions(rate=0.0, layers={"2": 0.2}, format="int8")  # only the second Linear
    with inject(net, [fault], seed=5):
        first = [p.detach().clone() for p in net.parameters()]
    with inject(net, [fault], seed=5):
        again = [p.detach().clone() for p in net.parameters()]
    with inject(net, [fault], seed=6):
        other = net[2].weight.detach().clone()
    assert torch.equal(first[0], clean[0]) and not torch.equal(first[2], clean[2])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(other, first[2])
    assert all(torch.equal(p, c) for p, c in zip(net.parameters(), clean))


def test_weights_are_restored_after_an_error_inside_the_block() -> None:
    net = _net()
    clean = net[0].weight.detach().clone()
    with pytest.raises(RuntimeError), inject(net, [FaultOptions(rate=0.5)], seed=0):
        raise RuntimeError("boom")
    assert torch.equal(net[0].weight, clean)


def test_feature_faults_hit_outputs_by_hooks_and_keep_gradients() -> None:
    net = _net()
    x = torch.randn(4, 6)
    stuck = FaultOptions(target="features", kind="stuck_at_0", rate=1.0, modules=["linear"], layers={"0": 0.0},
                         format="float32")
    with inject(net, [stuck], seed=0):
        out = net(x)
        out.sum().backward()
    assert torch.equal(out, torch.zeros(4, 3))  # the last Linear's outputs are all zero words
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0  # straight-through
    assert not net[2]._forward_hooks and torch.allclose(net(x), _net()(x))


def test_accuracy_under_faults_repeats_and_falls_with_the_rate() -> None:
    torch.manual_seed(0)
    x = torch.randn(300, 6)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    net = _net()
    opt = torch.optim.Adam(net.parameters(), 0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    batches = [(x, y)]
    clean = accuracy_under_faults(net, batches, [FaultOptions(rate=0.0)], draws=1, seed=0)[0]
    low = accuracy_under_faults(net, batches, [FaultOptions(rate=0.01)], draws=4, seed=0)
    high = accuracy_under_faults(net, batches, [FaultOptions(rate=0.1)], draws=4, seed=0)
    assert low == accuracy_under_faults(net, batches, [FaultOptions(rate=0.01)], draws=4, seed=0)
    assert clean > 0.85 and np.mean(high) < np.mean(low) <= clean


@pytest.mark.parametrize("item,where", [({"rate": 1.5}, "faults[0].rate"), ({"rate": -0.1}, "faults[0].rate"),
                                        ({"layers": {"cells.*": 2.0}}, "faults[0].layers.cells.*"),
                                        ({"modules": ["convv"]}, "faults[0].modules")])
def test_bad_fault_models_are_one_line_naming_the_item(item: dict, where: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_faults([item])
    msg = str(exc.value)
    assert msg.startswith(where) and "\n" not in msg


def test_a_rate_outside_0_1_in_a_run_config_names_its_yaml_path() -> None:
    cfg = {"search_space": {"type": "toy"}, "objective": {"type": "fault_tolerance", "faults": [{"rate": 2}]}}
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg)
    msg = str(exc.value)
    assert msg.startswith("objective.faults[0].rate:") and "<= 1" in msg and "\n" not in msg
