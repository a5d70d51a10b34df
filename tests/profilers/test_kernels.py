"""Kernel detection: fused groups and composites by measured rules, layout reorders where
the runtime makes them, and agreement with what ONNX Runtime really executes."""
from __future__ import annotations

import numpy as np

from hwnas.nn.kernels import FusionRules, detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.kernels.probes import ProbeGraph
from hwnas.nn.onnx_graph import import_onnx
from hwnas.profilers.backends.base import OnnxTarget
from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
from hwnas.profilers.ort_profile import profile_nodes
from hwnas.profilers.timing import TimingProtocol


def _conv_bn_relu_graph() -> bytes:
    """conv -> BatchNormalization -> ReLU -> conv, as a non-torch exporter writes it."""
    pg = ProbeGraph(16, 16)
    y = pg.unary(pg.unary(pg.conv("x", 32, 3, name="c1"), "bn", "bn1"), "relu", "r1")
    return pg.to_bytes([pg.conv(y, 32, 1, name="c2")], post=False)


def test_measured_pairs_decide_fusion(measured_rules) -> None:
    r = measured_rules
    assert r.block in (8, 16) and r.conv["dense"]
    for pair in ("conv>relu", "dwconv>relu", "conv>add", "fc>relu", "relu>relu6"):
        assert r.fuses(*pair.split(">")), (pair, r.pairs.get(pair))
    assert not r.pairs["add>relu"]["merged"] and not r.fuses("conv", "gap")  # run apart / never measured
    rec = r.pairs["conv>relu"]
    assert rec["t1"] > 0 and rec["t2"] > 0 and rec["merged"]


def test_conv_bn_relu_is_one_kernel(measured_rules) -> None:
    m = import_onnx(_conv_bn_relu_graph())
    rules = FusionRules.from_dict({**measured_rules.to_dict(), "pairs": {
        **measured_rules.pairs, "conv>bn": {"fused": True}}})
    ops = [k.prim.op for k in detect(m.graph, rules).kernels if k.tensor is None]
    assert ops == ["conv-bn-relu", "conv"]
    naive = [k.prim.op for k in detect(m.graph, FusionRules.none(), composites=False).kernels]
    assert naive == ["conv", "bn", "relu", "conv"]


def test_composites_and_layout(small_onnx, measured_rules) -> None:
    kg = detect(import_onnx(small_onnx).graph, measured_rules)
    ops = [k.prim.op for k in kg.kernels]
    assert {"se", "channel_shuffle", "split", "concat"} <= set(ops)
    assert "conv-relu" in ops and any(o.startswith("dwconv") for o in ops)
    se = next(k for k in kg.kernels if k.prim.op == "se")
    assert se.prim.extra("mid") == 16 and se.prim.extra("gate") == "hsigmoid" and len(se.nodes) >= 5
    reorders = [k for k in kg.kernels if k.prim.op == "reorder"]
    assert reorders and all(k.prim.extra("dir") in ("in", "out") for k in reorders)
    net = kg.to_network()
    assert net.nodes[0].op == "input" and len(net.nodes) == len(kg.kernels) + 1


def test_detection_matches_what_onnxruntime_executes(small_onnx, measured_rules) -> None:
    m = import_onnx(small_onnx)
    kg = detect(m.graph, measured_rules)
    target = OnnxTarget(m.data, (("input", (1, 3, 32, 32), 1),), "small")
    prof = profile_nodes(OnnxRuntimeBackend(), target, TimingProtocol(warmup=1, min_repeats=4, max_repeats=4,
                                                                      sessions=1))
    per, report = kernel_samples(kg, prof)
    assert report == {"untraced": [], "unpredicted_reorders": [], "missing_reorders": [],
                      "kernels_without_time": []}
    assert set(per) == set(range(len(kg.kernels)))
    assert all(len(v) == 4 and min(v) > 0 for v in per.values())
    total = sum(np.median(v) for v in per.values())
    assert 0 < total < 50
