"""Kernel features tell a depthwise convolution of 2 mod 4 channels from an aligned one:
ONNX Runtime runs the first about 3x slower per multiply-add (ShuffleNetV2's 58 channels)."""
from __future__ import annotations

from hwnas.cost_models.kernel_features import FEATURES, kernel_features
from hwnas.primitives import Primitive


def _dw(c: int) -> Primitive:
    return Primitive("dwconv", c, c, 28, 28, kernel=3, stride=1, groups=c)


def test_alignment_to_4_is_a_feature() -> None:
    i, o = FEATURES.index("c_in_aligned4"), FEATURES.index("c_out_aligned4")
    f58, f60 = kernel_features(_dw(58)), kernel_features(_dw(60))
    assert (f58[i], f58[o]) == (0.0, 0.0) and (f60[i], f60[o]) == (1.0, 1.0)
    assert len(f58) == len(FEATURES)
