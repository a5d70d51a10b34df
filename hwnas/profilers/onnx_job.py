"""``hwnas profile --onnx`` / ``--torch``: one model end to end and per kernel, into the store.

The model is keyed by the content hash of its imported graph (ops, attributes, shapes,
topology — not its weights, which do not change latency), so profiling the same
architecture twice resumes instead of measuring again. End to end it is timed under the
job's protocol on every backend asked for; on ONNX Runtime the same run's profiler gives
every executed node's time, traced to the kernels detection finds under the device's
measured rules (measured first if the store has none), one ``block`` row per kernel.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas import __version__, registry
from hwnas.errors import ConfigError
from hwnas.nn.kernels import detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.onnx_graph import OnnxModel, import_onnx, to_network
from hwnas.profilers.backends.base import OnnxTarget, TorchTarget
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.kernel_job import ensure_rules
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store

log = logging.getLogger(__name__)

SOURCE = "hwnas profile --onnx"
SPACE = "onnx"


@dataclass
class ModelSource:
    """What to profile: an ONNX file, or a torch factory (exported to ONNX here)."""

    onnx: str | None = None
    torch: str | None = None
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    torch_options: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> OnnxModel:
        if bool(self.onnx) == bool(self.torch):
            raise ConfigError("give one of --onnx FILE or --torch MODULE:FACTORY")
        if self.onnx:
            return import_onnx(self.onnx, input_shapes=self.input_shapes)
        from hwnas.nn.torch_import import export_module, input_shape_of, load_factory

        module = load_factory(str(self.torch), self.torch_options)
        given = next(iter(self.input_shapes.values()), None) if self.input_shapes else None
        shape = input_shape_of(module, given, str(self.torch))
        return import_onnx(export_module(module, shape, str(self.torch)), name=str(self.torch))

    @property
    def label(self) -> str:
        return str(self.onnx or self.torch)


def onnx_target(model: OnnxModel) -> OnnxTarget:
    return OnnxTarget(model.data, tuple((n, s, model.input_types[n]) for n, s in model.input_shapes.items()),
                      model.source)


def _rows(backend: str, net_hash: str, settings: dict[str, Any], versions: dict[str, Any], reply: dict[str, Any],
          kg: Any) -> tuple[list[Measurement], dict[str, Any]]:
    if not reply.get("ok"):
        err = str(reply.get("error") or "unknown error")
        return [Measurement("network", net_hash, backend, settings, (), err, versions=versions, source=SOURCE)], \
            {"backend": backend, "error": err}
    res = reply["result"]
    per, report = kernel_samples(kg, res["profile"]) if "profile" in res and kg is not None else ({}, None)
    extra: dict[str, Any] = {"job": SPACE, "overhead_s": res.get("overhead_s")}
    if report is not None:
        extra["detection"] = {k: len(v) for k, v in report.items()}
    rows = [Measurement("network", net_hash, backend, settings, tuple(res["samples_ms"]), versions=versions,
                        source=SOURCE, extra=extra)]
    out: dict[str, Any] = {"backend": backend, "median_ms": rows[0].median_ms, "std_ms": rows[0].std_ms}
    for pos, samples in sorted(per.items()):
        k = kg.kernels[pos]
        rows.append(Measurement("block", k.prim.key, backend, settings, tuple(samples), network=net_hash,
                                position=pos, versions=versions, source=SOURCE,
                                extra={"nodes": [kg.graph.nodes[n].name for n in k.nodes]}))
    if report is not None:
        out["kernels"] = len(rows) - 1
        out["kernel_sum_ms"] = sum(r.median_ms or 0.0 for r in rows[1:])
        out["detection"] = extra["detection"]
    return rows, out


def profile_model(store: Store, source: ModelSource, *, backends: Sequence[str] = ("onnxruntime",),
                  device: str = "cpu", protocol: TimingProtocol | None = None, timeout_s: float = 600.0,
                  per_node: bool = True, model: OnnxModel | None = None) -> dict[str, Any]:
    """Measure one model (``model``: ``source`` already loaded); returns a summary (hash,
    per-backend medians, kernels)."""
    t0 = time.perf_counter()
    protocol = protocol or TimingProtocol()
    model = model or source.load()
    spec = to_network(model.graph)
    dev = device_fingerprint(device, protocol.threads)
    dev_id = store.add_device(dev)
    store.add_network(spec, space=SPACE, arch={"source": source.label, "inputs": {k: list(v) for k, v in
                                                                                   model.input_shapes.items()}})
    summary: dict[str, Any] = {"model": source.label, "hash": spec.hash, "nodes": len(model.graph.nodes),
                               "store": str(store.path), "device": dev.name, "device_fingerprint": dev.fingerprint,
                               "backends": []}
    versions = {**runtime_versions(), "hwnas": __version__}
    for name in backends:
        backend = registry.build("backend", name, device=device, threads=protocol.threads)
        backend.check_device()
        settings = backend.settings(protocol)
        kg = None
        if name == "onnxruntime" and per_node:
            kg = detect(model.graph, ensure_rules(store, dev_id, backend)[0])
        if spec.hash in store.measured(dev_id, name, settings, "network", include_failed=False):
            summary["backends"].append({"backend": name, "skipped": True})
            continue
        reply = _measure(name, device, protocol, model, source, timeout_s, per_node=kg is not None)
        rows, out = _rows(name, spec.hash, settings, versions, reply, kg)
        store.add_measurements(dev_id, rows)
        summary["backends"].append(out)
    summary["wall_s"] = round(time.perf_counter() - t0, 2)
    return summary


def _measure(backend: str, device: str, protocol: TimingProtocol, model: OnnxModel, source: ModelSource,
             timeout_s: float, *, per_node: bool) -> dict[str, Any]:
    client = WorkerClient({"backend": backend, "device": device, "options": {}, "protocol": protocol.to_dict(),
                           "imports": [], "energy": True})
    try:
        if backend == "torch":
            if not source.torch:
                return {"ok": False, "error": "the torch backend runs torch modules: give --torch MODULE:FACTORY"}
            shape = next(iter(model.input_shapes.values()))
            target = TorchTarget(source.torch, shape, tuple(sorted(dict(source.torch_options).items())))
            return client.request("torch", {"target": target.to_spec()}, timeout_s)
        with tempfile.TemporaryDirectory(prefix="hwnas-onnx-") as tmp:
            path = str(Path(tmp) / "model.onnx")
            Path(path).write_bytes(model.data)
            return client.request("onnx", {"target": onnx_target(model).to_spec(path), "per_node": per_node},
                                  timeout_s)
    finally:
        client.close()
