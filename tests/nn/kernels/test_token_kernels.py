"""Transformer-era kernel detection on small torch exports, checked against what ONNX
Runtime really executes (its profiler's nodes traced back to our kernels)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hwnas.nn.kernels import FusionRules, detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.onnx_graph import import_onnx
from hwnas.nn.torch_import import export_module

D, N = 32, 49


class _Attn(nn.Module):
    """timm-style MHSA: fused qkv, qkv[0..2], q @ k^T * scale, softmax, @ v, projection."""

    def __init__(self, d: int = D, heads: int = 2) -> None:
        super().__init__()
        self.qkv, self.proj, self.h, self.scale = nn.Linear(d, 3 * d), nn.Linear(d, d), heads, (d // heads) ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * self.scale).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))


class _Encoder(nn.Module):
    """Pre-norm transformer layer over the tokens of a conv stem (as ViT writes it)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, D, 4, 4)
        self.n1, self.attn, self.n2 = nn.LayerNorm(D), _Attn(), nn.LayerNorm(D)
        self.mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).flatten(2).transpose(1, 2)
        t = t + self.attn(self.n1(t))
        return t + self.mlp(self.n2(t))


def _graph(model: nn.Module, shape: tuple[int, ...], opset: int | None = None):  # noqa: ANN202
    if opset is None:
        return import_onnx(export_module(model.eval(), shape), name=type(model).__name__)
    import io

    buf = io.BytesIO()
    torch.onnx.export(model.eval(), (torch.randn(shape),), buf, dynamo=False, opset_version=opset)
    return import_onnx(buf.getvalue(), name=f"{type(model).__name__} opset {opset}")


def test_layer_norm_op_and_decomposition_are_one_kernel(measured_rules) -> None:
    """opset 17 writes LayerNormalization; opset 13 writes the 9-node decomposition, which
    ONNX Runtime merges back (measured): both become one ``layernorm`` kernel over D."""
    m = nn.Sequential(nn.Linear(D, D), nn.LayerNorm(D), nn.Linear(D, D))
    fused, decomposed = _graph(m, (1, N, D)), _graph(m, (1, N, D), opset=13)
    assert len(decomposed.graph.nodes) >= len(fused.graph.nodes) + 8
    assert measured_rules.merges("layernorm")
    for model in (fused, decomposed):
        kg = detect(model.graph, measured_rules)
        norms = [k.prim for k in kg.kernels if "layernorm" in k.prim.op]
        assert len(norms) == 1 and norms[0].c_in == D and norms[0].h == N
    naive = detect(decomposed.graph, FusionRules.none(), composites=False)
    assert not any("layernorm" in k.prim.op for k in naive.kernels)  # the naive view sees 9 ops
    # a runtime measured not to merge the decomposition runs its nodes as kernels of their own
    unmerged = FusionRules.from_dict(measured_rules.to_dict())
    unmerged.pairs["pattern:layernorm"] = {**unmerged.pairs["pattern:layernorm"], "merged": False}
    ops = [k.prim.op for k in detect(decomposed.graph, unmerged).kernels]
    assert "layernorm" not in ops and {"reduce", "sub", "sqrt", "div"} <= set(ops)


def test_gelu_erf_pattern_and_batched_matmuls(measured_rules) -> None:
    g = _graph(_Encoder(), (1, 3, 28, 28)).graph
    kg = detect(g, measured_rules)
    ops = [k.prim.op for k in kg.kernels]
    gelu = next(k for k in kg.kernels if k.prim.op == "gelu")
    assert [g.nodes[n].op_type for n in sorted(gelu.nodes)].count("Erf") == 1 and len(gelu.nodes) == 5
    mms = [k.prim for k in kg.kernels if k.prim.op.startswith("matmul")]
    assert len(mms) == 2 and all(p.extra("b") == 2 for p in mms)  # (1, heads) batches: q @ k^T, attn @ v
    scores = next(p for p in mms if p.c_out == 49)
    assert scores.c_in == D // 2 and scores.h == 49  # K = head dim, M = N tokens
    assert "softmax" in ops and ops.count("fc-scale") == 4  # qkv, proj, two MLP linears: MatMul + bias as one
    # the residual sum also feeds the next sum, so the runtime keeps it apart from the norm
    assert ops.count("layernorm") == 2 and "add-layernorm" not in ops
    covered = kg.node_kernel()
    assert all(i in covered for i in range(len(g.nodes)))


@pytest.mark.parametrize("model,shape", [(_Encoder(), (1, 3, 28, 28)),
                                         (nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GELU(),
                                                        nn.Conv2d(16, 16, 7, padding=3, groups=16)), (1, 3, 24, 24))])
def test_detection_matches_what_onnxruntime_runs(measured_rules, model, shape) -> None:
    """Every executed node traced to a kernel, every kernel timed, no reorder unforeseen."""
    from hwnas.profilers.backends.base import OnnxTarget
    from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
    from hwnas.profilers.ort_profile import profile_nodes
    from hwnas.profilers.timing import TimingProtocol

    m = _graph(model, shape)
    kg = detect(m.graph, measured_rules)
    proto = TimingProtocol(warmup=1, min_repeats=2, max_repeats=2, min_time_ms=0.0, time_budget_s=1.0, sessions=1)
    name, shp = next(iter(m.input_shapes.items()))
    prof = profile_nodes(OnnxRuntimeBackend(), OnnxTarget(m.data, ((name, shp, 1),), "t"), proto)
    per, report = kernel_samples(kg, prof)
    assert not report["untraced"] and not report["kernels_without_time"] and not report["unpredicted_reorders"]
    assert len(per) == len(kg.kernels) and all(min(s) >= 0 for s in per.values())


def test_large_depthwise_kernel_size_is_a_feature(measured_rules) -> None:
    from hwnas.cost_models.kernel_features import FEATURES, kernel_features

    m = _graph(nn.Sequential(nn.Conv2d(16, 16, 7, padding=3, groups=16), nn.Conv2d(16, 16, 9, padding=4, groups=16)),
               (1, 16, 14, 14))
    dw = [k.prim for k in detect(m.graph, measured_rules).kernels if k.prim.op.startswith("dwconv")]
    assert [p.kernel for p in dw] == [7, 9]
    rows = [kernel_features(p) for p in dw]
    assert [r[FEATURES.index("kernel")] for r in rows] == [7, 9]
    assert rows[1][FEATURES.index("log10_macs")] > rows[0][FEATURES.index("log10_macs")]
