"""What makes the basic profile fast without changing what it measures: one export per
item whatever the number of sessions (reused, and redone when the primitive changes), a
worker started ahead that is killed when unused, and ``hwnas profile`` parsing without
importing every component (torch among them)."""
from __future__ import annotations

import subprocess
import sys
import time

import onnx

from hwnas import registry
from hwnas.primitives import Primitive
from hwnas.profilers.backends.base import ExportCache
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.messages import WorkerConfig
from hwnas.profilers.timing import TimingProtocol


def _input_dims(data: bytes) -> list[int]:
    model = onnx.load_from_string(data)
    return [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]


def test_export_cache_reuses_and_invalidates_on_change() -> None:
    made: list[str] = []

    def export(tag: str) -> bytes:
        made.append(tag)
        return tag.encode()

    cache = ExportCache(size=2)
    a = Primitive("conv", 8, 8, 16, 16, kernel=3, act="relu")
    b = Primitive("conv", 8, 8, 16, 16, kernel=5, act="relu")  # one field changed
    assert cache.get(a, 1, lambda: export("a")) == (b"a", False)
    assert cache.get(a, 1, lambda: export("a again")) == (b"a", True)
    assert cache.get(b, 1, lambda: export("b")) == (b"b", False)
    assert cache.get(a, 2, lambda: export("a batch 2")) == (b"a batch 2", False)  # batch is part of the key
    assert made == ["a", "b", "a batch 2"] and cache.hits == 1
    # bounded: a (batch 1), the least recently used, was evicted and is exported anew
    assert cache.get(a, 1, lambda: export("a evicted")) == (b"a evicted", False)


def test_sessions_of_one_item_share_one_export_and_a_changed_primitive_is_reexported() -> None:
    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=4, min_time_ms=0.2, time_budget_s=0.3, sessions=3)
    be = registry.build("backend", "onnxruntime", device="cpu", threads=1)
    p = Primitive("conv", 8, 16, 12, 12, kernel=3, act="relu")
    res = be.measure(p, proto, with_energy=False)
    assert len(res.session_medians_ms) == 3 and all(s > 0 for s in res.samples_ms)
    assert be.exports.hits == 2  # sessions 2 and 3 reused the first session's export
    assert res.overhead_s["export"] > 0 and res.overhead_s["compile"] > 0
    changed = Primitive("conv", 8, 16, 20, 20, kernel=3, act="relu")
    be.measure(changed, proto.__class__(**{**proto.to_dict(), "sessions": 1}), with_energy=False)
    assert be.exports.hits == 2  # a miss: exported anew ...
    data, hit = be.exports.get(changed, 1, lambda: b"")
    assert hit and _input_dims(data) == [1, 8, 20, 20]  # ... for the changed shape


def test_a_worker_spawned_ahead_answers_and_an_unused_one_is_killed() -> None:
    cfg = WorkerConfig("onnxruntime", "cpu", TimingProtocol(warmup=1, min_repeats=3, max_repeats=4, min_time_ms=0.2,
                                                            time_budget_s=0.3, sessions=1).to_dict(), energy=False)
    used = WorkerClient(cfg)
    used.spawn()
    try:
        reply = used.request("primitive", Primitive("conv", 4, 4, 8, 8, kernel=3).to_dict(), 60)
        assert reply.ok and len(reply.samples_ms) >= 3 and used.versions.get("onnxruntime")
        assert used.restarts == 0
    finally:
        used.close()
    assert used.proc is None
    unused = WorkerClient(cfg)
    unused.spawn()
    proc = unused.proc
    t0 = time.perf_counter()
    unused.close()  # never ready: killed, not waited for while it imports
    assert proc is not None and proc.poll() is not None and time.perf_counter() - t0 < 3


def test_profile_command_parses_without_importing_torch() -> None:
    code = ("import sys; from hwnas.cli import build_parser; "
            "a = build_parser('profile').parse_args(['profile', '--space', 'mbv2']); "
            "print(a.space, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["mbv2", "False"]
    full = subprocess.run([sys.executable, "-m", "hwnas.cli", "--help"], capture_output=True, text=True, check=True,
                          timeout=120)
    assert "profile" in full.stdout and "search" in full.stdout  # no command: every command is listed
