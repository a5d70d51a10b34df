"""The kernel job's random networks run stride-1 blocks at the stem's resolution, as real
mobile CNNs do (MobileNetV2's first block at 112x112), draw the unaligned widths real models
have (ShuffleNetV2's 58), and say which sampler drew them."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import shape_inference

import hwnas.nn.kernels.synthetic as syn

DWSEP = {b: (1.0 if b == "dwsep" else 0.0) for b in syn.BLOCKS}


def _stride1_depthwise_at_stem_resolution(seed: int) -> bool:
    """Whether the network of ``seed`` runs a stride-1 depthwise convolution on the stem's output size."""
    net = syn.sample_network(seed, DWSEP, max_macs=5e7, max_resolution=96)
    m = shape_inference.infer_shapes(onnx.load_from_string(net.data))
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in m.graph.value_info}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    stem_h = dims[convs[0].output[0]][2]
    for n in convs[1:]:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        if a.get("group", 1) > 1 and list(a.get("strides", [1, 1])) == [1, 1] and dims[n.input[0]][2] == stem_h:
            return True
    return False


def test_some_networks_keep_the_stem_resolution_in_their_first_stage() -> None:
    hits = [_stride1_depthwise_at_stem_resolution(s) for s in range(16)]
    assert 2 <= sum(hits) <= 14          # about half: stride 1 sometimes, stride 2 otherwise


def test_without_the_rule_no_network_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syn, "FIRST_STAGE_STRIDE1", 0.0)
    assert not any(_stride1_depthwise_at_stem_resolution(s) for s in range(16))


def test_every_draw_records_its_sampler_version() -> None:
    assert syn.describe(syn.sample_network(3, DWSEP, max_macs=1e7, max_resolution=64))["sampler"] == syn.SAMPLER_VERSION


def test_widths_are_sometimes_multiples_of_4_or_2_only() -> None:
    rng = np.random.default_rng(0)
    w = np.array([syn._width(rng, float(v)) for v in rng.choice([32, 64, 96, 128, 192], size=400)])
    assert (w % 8 == 0).mean() > 0.6                    # mostly aligned, as real models are
    assert ((w % 8) == 4).sum() >= 20 and ((w % 4) == 2).sum() >= 20   # and sometimes not


def test_some_depthwise_convolutions_have_2_mod_4_channels() -> None:
    """ONNX Runtime runs these about 3x slower: the kernel job must measure some."""
    odd = 0
    for s in range(40):
        m = onnx.load_from_string(syn.sample_network(s, max_macs=5e7, max_resolution=96).data)
        inits = {i.name: i for i in m.graph.initializer}
        for n in m.graph.node:
            g = [a.i for a in n.attribute if a.name == "group"]
            c = inits[n.input[1]].dims[0] if n.op_type == "Conv" else 0
            odd += int(bool(g) and g[0] == c > 1 and c % 4 == 2)
    assert odd >= 2
