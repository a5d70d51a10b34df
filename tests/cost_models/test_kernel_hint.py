"""A kernel with no predictor is refused in one line that names the ONNX node, its op and
the kernel-job block family that would give the predictor data for it."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hwnas.errors import CostModelError
from hwnas.nn.kernels.catalog import missing_kernel_hint


class _ConvThenAttentionScores(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.conv(x).flatten(2)
        return torch.softmax(t @ t.transpose(1, 2), dim=-1)


def test_unknown_kernel_names_node_op_and_block_family(kernel_store) -> None:
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_model import KernelCostModel
    from hwnas.cost_models.kernel_predict import predict_onnx
    from hwnas.nn.onnx_graph import import_onnx
    from hwnas.nn.torch_import import export_module
    from hwnas.store import Store

    with Store(kernel_store, create=False) as st:
        model = KernelCostModel(n_estimators=20).fit_kernels(load_kernel_data(st, "cpu"))
    assert "bmm" not in model.families_ and "softmax" not in model.families_  # convolutional networks only
    onnx = import_onnx(export_module(_ConvThenAttentionScores(), (1, 3, 8, 8)), name="scores.onnx")
    with pytest.raises(CostModelError) as err:
        predict_onnx(model, onnx, naive=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("scores.onnx: no kernel predictor for")
    assert "(MatMul)" in msg or "(Softmax)" in msg          # the ONNX node and its op type
    assert "block family 'vit'" in msg                       # what to add to the kernel job


def test_hint_for_ops_no_family_builds() -> None:
    assert "'vit'" in missing_kernel_hint("layernorm") and "'convnext'" in missing_kernel_hint("reduce")
    assert "synthetic.py" in missing_kernel_hint("op_nonmaxsuppression")
