"""A batch norm over flattened tokens (LeViT's Linear + BatchNorm1d: a ``[rows, C]`` tensor
at batch 1) keeps its rows in the kernel's shape; they were dropped as if they were the
batch, so every token count got one price."""
from __future__ import annotations

from hwnas.cost_models.kernel_features import work
from hwnas.nn.kernels import FusionRules, detect
from hwnas.nn.kernels.tokenbuilder import TokenBuilder
from hwnas.nn.onnx_graph import import_onnx


def _bn_prims(hw: int):  # type: ignore[no-untyped-def]
    tb = TokenBuilder(3, 32, seed=0)
    x = tb.conv_act("x", 16, 3, 32 // hw)
    t = tb.linear_bn(tb.to_tokens(x), 24)
    data = tb.to_bytes([tb.fc(tb.op("ReduceMean", [t], (1, 24), axes=[1], keepdims=0), 10, "fc")], post=False)
    kg = detect(import_onnx(data, name="levit-like").graph, FusionRules())
    return [k.prim for k in kg.kernels if k.prim.op == "bn"]


def test_token_batch_norm_records_its_rows() -> None:
    (small,), (big,) = _bn_prims(4), _bn_prims(8)
    assert (small.c_in, small.h, small.w, small.extra("m")) == (24, 16, 1, 16)
    assert (big.h, big.extra("m")) == (64, 64)
    assert small.key != big.key and work(big)[1] == 4 * work(small)[1]  # 4x the tokens, 4x the bytes
