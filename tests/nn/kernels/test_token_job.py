"""The kernel job's transformer-era block families: they build, import, are fully covered
by detected kernels that ONNX Runtime really times, and a tiny job stores their kernels."""
from __future__ import annotations

import pytest

from hwnas.nn.kernels import detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.kernels.synthetic import BLOCKS, sample_network
from hwnas.nn.kernels.token_blocks import TOKEN_BLOCKS
from hwnas.nn.onnx_graph import import_onnx

#: Per family, ops its networks must contain (what the family is there for).
EXPECTED = {"vit": {"LayerNormalization", "Softmax", "Erf"}, "window": {"Transpose", "Softmax"},
            "convnext": {"LayerNormalization", "Transpose"}, "mobilevit": {"Softmax", "Sigmoid"},
            "poolmixer": {"AveragePool", "Sub"}, "levit": {"HardSwish", "BatchNormalization", "Softmax"}}


def _only(kind: str) -> dict[str, float]:
    return {b: (1.0 if b == kind else 0.0) for b in BLOCKS}


@pytest.mark.parametrize("kind", TOKEN_BLOCKS)
def test_token_family_builds_imports_and_is_timed_kernel_by_kernel(measured_rules, kind) -> None:
    from hwnas.profilers.backends.base import OnnxTarget
    from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
    from hwnas.profilers.ort_profile import profile_nodes
    from hwnas.profilers.timing import TimingProtocol

    net = sample_network(7, _only(kind), max_macs=3e7, max_resolution=64)
    assert set(net.blocks) == {kind}
    g = import_onnx(net.data, name=kind).graph
    assert EXPECTED[kind] <= {n.op_type for n in g.nodes}
    kg = detect(g, measured_rules)
    assert set(kg.node_kernel()) == set(range(len(g.nodes)))  # every ONNX node in a kernel
    proto = TimingProtocol(warmup=1, min_repeats=2, max_repeats=2, min_time_ms=0.0, time_budget_s=1.0, sessions=1)
    prof = profile_nodes(OnnxRuntimeBackend(), OnnxTarget(net.data, (("x", net.input_shape, 1),), kind), proto)
    _, report = kernel_samples(kg, prof)
    assert not report["untraced"] and not report["kernels_without_time"] and not report["unpredicted_reorders"]


def test_sampler_covers_large_kernels_rolls_and_patch_merging() -> None:
    """ConvNeXt-like networks draw 7x7 and 9x9 depthwise convolutions; Swin-like ones shifted
    windows (torch.roll: Slice + Concat) and patch merging (step-2 Slices)."""
    sizes, window_ops = set(), set()
    for seed in range(12):
        g = import_onnx(sample_network(seed, _only("convnext"), max_macs=2e7, max_resolution=64).data).graph
        sizes |= {int(n.attrs["kernel_shape"][0]) for n in g.nodes
                  if n.op_type == "Conv" and int(n.attrs.get("group", 1)) > 1}
        w = import_onnx(sample_network(seed, _only("window"), max_macs=2e7, max_resolution=112).data).graph
        window_ops |= {n.op_type for n in w.nodes}
    assert {7, 9} <= sizes
    assert {"Slice", "Concat", "Softmax", "LayerNormalization"} <= window_ops


def test_tiny_kernel_job_stores_token_kernels(tmp_path, measured_rules) -> None:
    from hwnas.cost_models.kernel_data import load_kernel_data
    from hwnas.cost_models.kernel_features import family
    from hwnas.nn.kernels.rules import KIND
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.profilers.kernel_job import KernelJob, KernelSampling
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol
    from hwnas.store import Store

    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=3, min_time_ms=0.0, time_budget_s=0.5, sessions=1)
    weights = {b: 0.0 for b in BLOCKS} | {"vit": 1.0, "convnext": 1.0, "levit": 1.0}
    with Store(tmp_path / "k.sqlite") as st:
        dev_id = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev_id, "onnxruntime", KIND, measured_rules.to_dict(), {"test": True})
        summary = KernelJob(st, ProfileRequest(networks=3, seed=3, protocol=proto, show_progress=False),
                            KernelSampling(rounds=1, adaptive=False, max_macs=2e7, max_resolution=64,
                                           weights=weights)).run()
        assert summary.measured == 3 and summary.clean == 3 and summary.failed == 0
        prims, y = load_kernel_data(st, "cpu").kernels()
    fams = {family(p.op) for p in prims}
    assert {"norm", "bmm", "softmax", "fc"} <= fams
    assert len(y) == len(prims) and (y > 0).all()
