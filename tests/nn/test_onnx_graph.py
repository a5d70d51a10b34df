"""ONNX import: static shapes, folded shape subgraphs, a weight-free content hash, and
one-line errors for truncated files and dynamic shapes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hwnas.errors import ConfigError, ModelImportError
from hwnas.nn.onnx_graph import import_onnx, parse_input_shapes, to_network
from hwnas.nn.torch_import import export_module, load_factory


def _export(model: nn.Module, shape=(1, 3, 16, 16), dynamic: bool = False) -> bytes:
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(shape),), buf, dynamo=False, opset_version=17,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}} if dynamic else None)
    return buf.getvalue()


class Chunky(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu_a, self.relu_b = nn.ReLU(), nn.ReLU()

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = self.conv(x)
        a, b = y.chunk(2, dim=1)  # exported through Shape/Gather/Div: must fold to static Slices
        return torch.cat([self.relu_a(a), self.relu_b(a) + b], 1)


def test_shapes_fold_and_common_subexpressions(small_onnx) -> None:
    m = import_onnx(_export(Chunky()), name="chunky")
    ops = [n.op_type for n in m.graph.nodes]
    assert "Shape" not in ops and "Gather" not in ops and ops.count("Slice") == 2
    assert ops.count("Relu") == 1  # the two ReLUs of the same tensor run once
    for n in m.graph.nodes:
        for t in (*m.graph.data_inputs(n), *n.outputs):
            assert all(d > 0 for d in m.graph.shape(t))
    big = import_onnx(small_onnx)
    assert big.input_shapes == {"input": (1, 3, 32, 32)} and len(big.graph.nodes) > 20


def test_content_hash_ignores_weights_not_shapes() -> None:
    torch.manual_seed(0)
    a = import_onnx(_export(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())))
    torch.manual_seed(1)
    b = import_onnx(_export(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())))
    c = import_onnx(_export(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), shape=(1, 3, 20, 20)))
    assert to_network(a.graph).hash == to_network(b.graph).hash != to_network(c.graph).hash
    assert a.data != b.data


def test_dynamic_shape_needs_input_shape(tmp_path) -> None:
    path = tmp_path / "dyn.onnx"
    path.write_bytes(_export(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), dynamic=True))
    with pytest.raises(ModelImportError, match=r"input 'input' has a dynamic shape \[\?, 3, 16, 16\]; give "
                                               r"--input-shape input=1x3x16x16") as exc:
        import_onnx(path)
    assert "\n" not in str(exc.value)
    m = import_onnx(path, input_shapes=parse_input_shapes(["input=1x3x16x16"]))
    assert m.graph.shape(m.graph.nodes[0].outputs[0]) == (1, 4, 14, 14)
    with pytest.raises(ConfigError, match="does not fit"):
        import_onnx(path, input_shapes=parse_input_shapes(["input=1x4x16x16"]))
    with pytest.raises(ConfigError, match="has no input 'img'"):
        import_onnx(path, input_shapes=parse_input_shapes(["img=1x3x16x16"]))
    with pytest.raises(ConfigError, match="expected NAME=1x3x224x224"):
        parse_input_shapes(["input=1x3xbig"])


def test_truncated_and_foreign_files_are_one_line(tmp_path, small_onnx) -> None:
    data = small_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    for bad in (cut, tmp_path / "missing.onnx"):
        with pytest.raises(ModelImportError) as exc:
            import_onnx(bad)
        assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelImportError, match="empty file"):
        import_onnx(empty)


def test_torch_factory_errors() -> None:
    with pytest.raises(ModelImportError, match="expected MODULE:FACTORY"):
        load_factory("hwnas.zoo.mobilenet_v2")
    with pytest.raises(ModelImportError, match="has no callable 'nope'"):
        load_factory("hwnas.zoo:nope")
    with pytest.raises(ModelImportError, match="bad factory options"):
        load_factory("hwnas.zoo:mobilenet_v2", {"colour": 1})
    m = load_factory("hwnas.zoo:mobilenet_v2", {"width": 0.5, "resolution": 64})
    assert m.input_shape == (1, 3, 64, 64)
    assert import_onnx(export_module(m, m.input_shape)).input_shapes == {"input": (1, 3, 64, 64)}
