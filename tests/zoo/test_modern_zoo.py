"""The transformer and hybrid zoo families (ViT, DeiT, Swin, ConvNeXt, MobileViT,
EfficientFormer, LeViT): every registered variant's structure and output size (on torch's
meta device: the full models are too slow to run here), each factory's real forward, ONNX
export + import and agreement with ONNX Runtime at a reduced size, and the parts that can go
subtly wrong: the shifted-window mask, DeiT's averaged heads, MobileViT's unfold/fold."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch

from hwnas import registry, zoo
from hwnas.errors import ConfigError
from hwnas.zoo.attention import absolute_offsets, window_offsets
from hwnas.zoo.modern import fold_patches, unfold_patches
from hwnas.zoo.transformers import SwinBlock

FAMILIES = ("ViT", "DeiT", "Swin", "ConvNeXt", "MobileViT", "EfficientFormer", "LeViT")

#: factory -> reduced options (same block types, fewer/narrower layers, small inputs), and
#: op types the imported ONNX graph must contain for that family.
SMALL: dict[str, tuple[dict[str, Any], set[str]]] = {
    "vit": ({"dim": 24, "depth": 2, "heads": 2, "resolution": 32, "patch": 8},
            {"LayerNormalization", "Softmax", "Erf", "MatMul", "Split"}),
    "deit_tiny": ({"resolution": 32, "depth": 1}, {"LayerNormalization", "Softmax", "Erf", "Gemm"}),
    "swin_t": ({"width": 0.25, "resolution": 64, "window": 4, "depths": (2, 2)},
               {"LayerNormalization", "Softmax", "Slice", "Concat", "Transpose"}),
    "convnext_t": ({"width": 0.25, "resolution": 32, "depths": (1, 1)},
                   {"LayerNormalization", "ReduceMean", "Sqrt", "Erf", "Conv", "Transpose"}),
    "mobilevit": ({"size": "xxs", "resolution": 64}, {"LayerNormalization", "Softmax", "Sigmoid", "Concat"}),
    "efficientformer_l1": ({"width": 0.25, "resolution": 64}, {"AveragePool", "Sub", "Softmax", "Erf"}),
    "levit": ({"resolution": 32}, {"HardSwish", "BatchNormalization", "Softmax", "Slice"}),
}


#: Parameter counts (millions) of these layouts as the papers give them (MobileViT, EfficientFormer, LeViT)
#: or their reference implementations count them where a paper rounds (ViT, DeiT, Swin, ConvNeXt): a check that
#: depths, widths, heads, MLP ratios and heads match (DeiT and EfficientFormer with distillation head).
PUBLISHED_M = {"vit_tiny-r224": 5.7, "vit_small-r224": 22.1, "deit_tiny-r224": 5.9, "deit_small-r224": 22.4,
               "swin_t-w1.0-r224": 28.3, "convnext_t-w1.0-r224": 28.6, "mobilevit_xxs-r256": 1.3,
               "mobilevit_xs-r256": 2.3, "mobilevit_s-r256": 5.6, "efficientformer_l1-w1.0-r224": 12.3,
               "levit_128s-r224": 7.8, "levit_128-r224": 9.2}


def _modern_entries() -> list[Any]:
    return [e for e in registry.list("zoo") if e.obj.family in FAMILIES]


def test_every_family_has_variants_and_every_variant_has_its_output_size() -> None:
    entries = _modern_entries()
    per_family = Counter(e.obj.family for e in entries)
    assert set(per_family) == set(FAMILIES) and min(per_family.values()) >= 2 and len(entries) >= 16
    for e in entries:
        with torch.device("meta"):
            model = e.obj.build()
            out = model(torch.empty(model.input_shape))
        assert not model.training and tuple(out.shape) == (1, 1000), e.name
        assert model.input_shape[2] == int(e.name.rsplit("-r", 1)[1]), e.name
        if e.name in PUBLISHED_M:
            assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == PUBLISHED_M[e.name], e.name


@pytest.mark.parametrize("factory", sorted(SMALL))
def test_factory_runs_exports_and_matches_onnxruntime(factory: str) -> None:
    import onnx
    import onnxruntime as ort

    from hwnas.nn.onnx_graph import import_onnx
    from hwnas.nn.torch_import import export_module

    options, expected_ops = SMALL[factory]
    torch.manual_seed(0)
    model = getattr(zoo, factory)(num_classes=10, **options)
    x = torch.randn(model.input_shape)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 10) and torch.isfinite(out).all()
    data = export_module(model, model.input_shape, factory)
    imported = import_onnx(data, name=factory)
    ops = {n.op_type for n in imported.graph.nodes}
    assert expected_ops <= ops, expected_ops - ops
    assert {n.op_type for n in onnx.load_from_string(data).graph.node} >= ops - {"Identity"}
    sess = ort.InferenceSession(imported.data, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, out.numpy(), rtol=1e-3, atol=1e-4)


def _changed_pixels(block: SwinBlock, x: torch.Tensor, pixel: tuple[int, int]) -> set[tuple[int, int]]:
    s = block.size
    y = x.clone().view(1, s, s, -1)
    y[0, pixel[0], pixel[1]] += 5.0 * torch.randn(y.shape[-1])  # not a constant: LayerNorm removes those
    with torch.no_grad():
        diff = (block(y.view(1, s * s, -1)) - block(x)).abs().sum(-1).view(s, s)
    return {(int(i), int(j)) for i, j in torch.nonzero(diff > 1e-4)}


def test_shifted_window_mask_keeps_wrapped_regions_apart() -> None:
    torch.manual_seed(0)
    block = SwinBlock(dim=8, heads=2, size=8, window=4, shift=2).eval()
    x = torch.randn(1, 64, 8)
    # Rolled by -2, pixel (0, 0) lands in the bottom-right window next to pixels that were far
    # away in the image (rows/cols 6-7); the mask lets it reach only its own 2x2 region.
    assert _changed_pixels(block, x, (0, 0)) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # An interior pixel's window is one region: it reaches its whole (shifted) 4x4 window.
    assert len(_changed_pixels(block, x, (3, 3))) == 16
    probs, _ = block.attn.weights(torch.randn(4, 16, 8), mask=block.mask)
    corner = probs[3]  # the bottom-right window: four regions of 2x2
    assert (corner.sum(-1) - 1).abs().max() < 1e-5 and (corner < 1e-30).sum() == 2 * 16 * 12
    block.mask = None  # without the mask the corner pixel leaks into the wrapped-around pixels
    assert len(_changed_pixels(block, x, (0, 0))) == 16


def test_deit_averages_its_class_and_distillation_heads() -> None:
    torch.manual_seed(0)
    model = zoo.vit(dim=24, depth=1, heads=2, resolution=32, patch=16, num_classes=5, distilled=True)
    feats: list[torch.Tensor] = []
    model.norm.register_forward_hook(lambda _m, _i, out: feats.append(out))
    with torch.no_grad():
        out = model(torch.randn(model.input_shape))
        cls, dist = model.head(feats[0][:, 0]), model.head_dist(feats[0][:, 1])
    assert (cls - dist).abs().max() > 1e-3  # two different heads...
    torch.testing.assert_close(out, (cls + dist) / 2)  # ...averaged at evaluation
    assert feats[0].shape[1] == 2 + 4  # class + distillation token + 2x2 patches


def test_mobilevit_unfold_fold_round_trip() -> None:
    x = torch.randn(2, 3, 8, 12)
    seq = unfold_patches(x, 2)
    assert seq.shape == (2 * 4, 4 * 6, 3)
    # sequence (b, i, j) holds, for every 2x2 patch n, the pixel at offset (i, j) inside it
    b, i, j, n = 1, 1, 0, 7
    torch.testing.assert_close(seq[b * 4 + i * 2 + j, n], x[b, :, 2 * (n // 6) + i, 2 * (n % 6) + j])
    assert torch.equal(fold_patches(seq, 2, 8, 12), x)


def test_position_bias_indices_follow_offsets() -> None:
    idx = window_offsets(3)
    assert idx.shape == (9, 9) and len(idx.unique()) == 25 and bool((idx.diagonal() == 12).all())
    # tokens (0,0)->(0,1) and (1,1)->(1,2) have the same offset, so the same bias
    assert idx[0, 1] == idx[4, 5] and idx[0, 1] != idx[1, 0]
    index, n = absolute_offsets(4, stride=2)
    assert index.shape == (4, 16) and n == 16 and index[0, 5] == index[3, 15] != index[3, 10]  # (1,1) apart; (0,0)


@pytest.mark.parametrize("call", [lambda: zoo.mobilevit(resolution=100), lambda: zoo.swin_t(resolution=200),
                                  lambda: zoo.levit(size="256"), lambda: zoo.vit_tiny(resolution=100),
                                  lambda: zoo.vit(dim=100, heads=3)])
def test_bad_sizes_say_what_is_expected(call: Any) -> None:
    with pytest.raises(ConfigError, match="must|multiple|one of"):
        call()
