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
from functools import partial
from pathlib import Path
from typing import Any, Mapping

from hwnas import __version__, registry
from hwnas.errors import ConfigError
from hwnas.nn.kernels import detect
from hwnas.nn.kernels.attribution import kernel_samples
from hwnas.nn.onnx_graph import OnnxModel, import_onnx, to_network
from hwnas.profilers.backends.base import OnnxTarget, TorchTarget
from hwnas.profilers.client import WorkerClient
from hwnas.profilers.fingerprint import device_fingerprint, runtime_versions
from hwnas.profilers.jobs import LEASE_GRACE_S, JobItem, LeasedItems
from hwnas.profilers.kernel_job import ensure_rules
from hwnas.profilers.messages import WorkerConfig, WorkerReply, worker_config
from hwnas.profilers.request import ProfileRequest
from hwnas.store import Measurement, Store, settings_hash
from hwnas.store.claims import ItemKey, item_stored

log = logging.getLogger(__name__)

SOURCE = "hwnas profile --onnx"
SPACE = "onnx"
#: A model job's timeout when the request gives none (a whole model, end to end).
DEFAULT_TIMEOUT_S = 600.0


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


def _rows(backend: str, net_hash: str, settings: dict[str, Any], versions: dict[str, Any], reply: WorkerReply,
          kg: Any) -> tuple[list[Measurement], dict[str, Any]]:
    if not reply.ok:
        err = str(reply.error)
        return [Measurement("network", net_hash, backend, settings, (), err, versions=versions, source=SOURCE)], \
            {"backend": backend, "error": err}
    res = dict(reply.result or {})
    per, report = kernel_samples(kg, res["profile"]) if "profile" in res and kg is not None else ({}, None)
    extra: dict[str, Any] = {"job": SPACE, "overhead_s": res.get("overhead_s")}
    if report is not None:
        extra["detection"] = {k: len(v) for k, v in report.items()}
    rows = [Measurement("network", net_hash, backend, settings, reply.samples_ms, versions=versions,
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


def profile_model(store: Store, source: ModelSource, request: ProfileRequest | None = None, *,
                  per_node: bool = True, model: OnnxModel | None = None) -> dict[str, Any]:
    """Measure one model (``model``: ``source`` already loaded) on the request's backends;
    returns a summary (hash, per-backend medians, kernels). A backend whose newest row for
    this graph succeeded is skipped; each backend's row is taken under a lease."""
    t0 = time.perf_counter()
    request = request or ProfileRequest()
    protocol = request.timing()
    timeout_s = request.timeout(DEFAULT_TIMEOUT_S)
    model = model or source.load()
    spec = to_network(model.graph)
    dev = device_fingerprint(request.device, protocol.threads)
    dev_id = store.add_device(dev)
    store.add_network(spec, space=SPACE, arch={"source": source.label, "inputs": {k: list(v) for k, v in
                                                                                   model.input_shapes.items()}})
    summary: dict[str, Any] = {"model": source.label, "hash": spec.hash, "nodes": len(model.graph.nodes),
                               "store": str(store.path), "device": dev.name, "device_fingerprint": dev.fingerprint,
                               "backends": []}
    versions = {**runtime_versions(), "hwnas": __version__}
    done = partial(item_stored, store, ok=True)
    for name in request.backends:
        backend = registry.build("backend", name, device=request.device, threads=protocol.threads)
        backend.check_device()
        settings = backend.settings(protocol)
        kg = None
        if name == "onnxruntime" and per_node:
            kg = detect(model.graph, ensure_rules(store, dev_id, backend)[0])
        config = worker_config(backend, request.device, protocol)
        out: dict[str, Any] = {"backend": name, "skipped": True}

        def measure(it: JobItem) -> list[Measurement]:
            leases.renew(it, timeout_s)
            reply = _measure(config, model, source, timeout_s, per_node=kg is not None)
            rows, res = _rows(name, spec.hash, settings, versions, reply, kg)
            out.clear()
            out.update(res)
            return rows

        item = JobItem(ItemKey(dev_id, name, settings_hash(settings), "network", spec.hash), spec,
                       timeout_s + LEASE_GRACE_S)
        with LeasedItems(store, [item], done) as leases:
            leases.run(measure)
        summary["backends"].append(out)
    summary["wall_s"] = round(time.perf_counter() - t0, 2)
    return summary


def _measure(config: WorkerConfig, model: OnnxModel, source: ModelSource, timeout_s: float, *,
             per_node: bool) -> WorkerReply:
    client = WorkerClient(config)
    try:
        if config.backend == "torch":
            if not source.torch:
                return WorkerReply.failure("the torch backend runs torch modules: give --torch MODULE:FACTORY")
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
