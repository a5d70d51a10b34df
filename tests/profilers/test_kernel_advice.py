"""The kernel job's advice comes from above: profilers never import cost models, the
adaptive job takes its advisor from the caller and uses it between rounds."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hwnas.errors import ConfigError

PROFILERS = Path(__file__).resolve().parents[2] / "hwnas" / "profilers"


def test_no_profiler_module_imports_cost_models() -> None:
    bad = []
    for f in sorted(PROFILERS.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{f.name}: {n}" for n in names if n.startswith("hwnas.cost_models")]
    assert not bad


def test_adaptive_kernel_job_needs_an_advisor(tmp_path: Path) -> None:
    from hwnas.profilers.kernel_job import KernelSampling, profile_kernels
    from hwnas.store import Store

    with Store(tmp_path / "k.sqlite") as st, pytest.raises(ConfigError, match="adaptive sampling needs an advisor"):
        profile_kernels(st, None, KernelSampling(rounds=2))


@pytest.mark.timeout(300)
def test_the_advisor_weights_later_rounds(tmp_path: Path, measured_rules) -> None:
    from hwnas.nn.kernels.rules import KIND
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.profilers.kernel_job import KernelSampling, profile_kernels
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol
    from hwnas.store import Store

    calls: list[int] = []

    def advisor(store, dev_id, backend, settings, rnd, **kw):  # type: ignore[no-untyped-def]
        calls.append(rnd)
        return {"plain": 3.0}

    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=3, min_time_ms=0.2, time_budget_s=0.2, sessions=1)
    with Store(tmp_path / "k.sqlite") as st:
        dev_id = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev_id, "onnxruntime", KIND, measured_rules.to_dict(), {"test": True})
        s = profile_kernels(st, ProfileRequest(networks=2, seed=0, protocol=proto, show_progress=False),
                            KernelSampling(rounds=2, max_macs=1e6, max_resolution=16), advisor=advisor)
    assert calls == [1] and s.rounds == 2
    assert s.weights == [{}, {"plain": 3.0}]
