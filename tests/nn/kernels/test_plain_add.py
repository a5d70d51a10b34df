"""A residual sum after a convolution that runs in the plain layout (channels not a multiple
of the runtime's block): ONNX Runtime merges Conv + Add (+ ReLU) into one ``FusedConv``
there too, so detection must make them one kernel - measured, under ``plain:`` rules."""
from __future__ import annotations

from dataclasses import replace

import pytest

from hwnas.nn.kernels import detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.kernels.netbuilder import NetBuilder
from hwnas.nn.onnx_graph import import_onnx


@pytest.fixture(scope="module")
def plain_rules(measured_rules):
    """(the plain pairs, the rules with them) and, as ``measured_rules`` in the tests below,
    the same rules without them: rules measured before plain pairs existed."""
    pairs = {k: v for k, v in measured_rules.pairs.items() if k.startswith("plain:")}
    return pairs, measured_rules


@pytest.fixture(scope="module")
def old_rules(measured_rules):
    return replace(measured_rules, pairs={k: v for k, v in measured_rules.pairs.items() if not k.startswith("plain:")})


def _residual_net(c: int) -> bytes:
    nb = NetBuilder(3, 32, seed=0)
    x = nb.conv_act("x", c, 3, 1)
    x = nb.basic(x, c, 1)          # conv-relu, conv, add (identity shortcut), relu
    x = nb.basic(x, c + 8, 1)      # a 1x1 projection shortcut (another kernel's output)
    return nb.to_bytes([nb.head(x, 10)], post=False)


def _report(data: bytes, rules):  # type: ignore[no-untyped-def]
    from hwnas.profilers.backends.base import OnnxTarget
    from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
    from hwnas.profilers.ort_profile import profile_nodes
    from hwnas.profilers.timing import TimingProtocol

    kg = detect(import_onnx(data).graph, rules)
    proto = TimingProtocol(warmup=1, min_repeats=2, max_repeats=2, min_time_ms=0.0, time_budget_s=1.0, sessions=1)
    prof = profile_nodes(OnnxRuntimeBackend(), OnnxTarget(data, (("x", (1, 3, 32, 32), 1),), "plain-add"), proto)
    return kg, kernel_samples(kg, prof)[1]


def test_the_runtime_merges_a_plain_convolution_and_its_sum(plain_rules, measured_rules) -> None:
    """measure_rules measures them (the suite's rules do as it does: tests/conftest.py)."""
    pairs, _ = plain_rules
    assert set(pairs) == {"plain:conv>add", "plain:dwconv>add", "plain:gconv>add"}
    assert measured_rules.block > 0
    assert pairs["plain:conv>add"]["merged"] and pairs["plain:conv>add"]["c"] % measured_rules.block


def test_detection_times_every_kernel_of_an_unaligned_residual_network(plain_rules, measured_rules,
                                                                      old_rules) -> None:
    _, rules = plain_rules
    c = 4 * measured_rules.block - 2                 # unaligned: the convolutions stay plain
    kg, rep = _report(_residual_net(c), rules)
    assert not rep["kernels_without_time"] and not rep["untraced"]
    assert sum(1 for k in kg.kernels if k.prim and k.prim.op.startswith("conv-add")) == 2
    # without the plain rules (rules measured before them): the sums stand alone, untimed
    kg_old, rep_old = _report(_residual_net(c), old_rules)
    assert rep_old["kernels_without_time"]
    assert not any(k.prim and k.prim.op.startswith("conv-add") for k in kg_old.kernels)


def test_aligned_residual_networks_are_detected_as_before(plain_rules, measured_rules, old_rules) -> None:
    _, rules = plain_rules
    data = _residual_net(4 * measured_rules.block)
    ops = [k.prim.op for k in detect(import_onnx(data).graph, rules).kernels if k.prim]
    assert ops == [k.prim.op for k in detect(import_onnx(data).graph, old_rules).kernels if k.prim]
