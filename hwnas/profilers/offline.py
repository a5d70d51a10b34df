"""Offline bundles: ONNX files + manifest.json + a stand-alone runner script.

Why: devices hwnas cannot drive (phones, boards, air-gapped machines) still need
tables. ``hwnas profile --export-only DIR`` writes everything such a machine needs;
its results file (``hwnas-results v1``, docs/offline-results.md) comes back through
``hwnas ingest``, which maps item names to primitives and networks via the manifest.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from hwnas.errors import ProfilingError
from hwnas.inputs import output_dir
from hwnas.nn.export import export_onnx
from hwnas.profilers.runner import sample_networks
from hwnas.profilers.timing import TimingProtocol

log = logging.getLogger(__name__)

FORMAT = "hwnas-bundle"
VERSION = 1
RUNNER_NAME = "run_bundle.py"


def runner_source() -> str:
    """The text of the stand-alone runner shipped inside every bundle."""
    return resources.files("hwnas.profilers").joinpath("bundle_runner.py").read_text()


def export_bundle(space: Any, out_dir: str | Path, *, protocol: TimingProtocol | None = None,
                  networks: int = 0, seed: int = 0) -> dict[str, Any]:
    """Write the bundle for ``space`` (all primitives, plus ``networks`` sampled ones).

    Returns a summary dict (dir, items, primitives, networks, failed). An item whose
    export fails is left out of the manifest and logged, so one odd op does not stop
    the bundle.
    """
    # The stand-alone bundle runner reports medians of wall-clock samples.
    protocol = replace(protocol or TimingProtocol(), estimator="median")
    out = output_dir(out_dir, "bundle folder")
    if out.exists() and (out / "manifest.json").exists():
        log.info("overwriting bundle in %s", out)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    items: list[dict[str, Any]] = []
    failed: list[str] = []
    batch = protocol.batch
    for i, p in enumerate(space.primitives()):
        name = f"p{i:04d}"
        try:
            export_onnx(p, out / "onnx" / f"{name}.onnx", batch)
        except ProfilingError as exc:
            failed.append(f"{p.key}: {exc}")
            continue
        items.append({"name": name, "kind": "primitive", "key": p.key, "primitive": p.to_dict(),
                      "onnx": f"onnx/{name}.onnx", "input_shape": [batch, p.c_in, p.h, p.w]})
    nets = sample_networks(space, networks, seed) if networks else []
    for i, (net, _arch) in enumerate(nets):
        name = f"n{i:04d}"
        try:
            export_onnx(net, out / "onnx" / f"{name}.onnx", batch)
        except ProfilingError as exc:
            failed.append(f"{net.hash}: {exc}")
            continue
        items.append({"name": name, "kind": "network", "hash": net.hash, "network": net.to_dict(),
                      "onnx": f"onnx/{name}.onnx", "input_shape": [batch, *net.input_shape]})
    manifest = {"format": FORMAT, "version": VERSION, "space": space.name, "space_options": space.options_dict(),
                "settings": protocol.to_dict(), "items": items}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    (out / RUNNER_NAME).write_text(runner_source())
    for f in failed:
        log.warning("not exported: %s", f)
    return {"dir": str(out), "items": len(items), "primitives": sum(it["kind"] == "primitive" for it in items),
            "networks": sum(it["kind"] == "network" for it in items), "failed": failed}
