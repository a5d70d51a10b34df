"""How each shipped asset is made: the facts about the sources and one function per kind.

Why recipes in code: an asset is only trustworthy if anyone can rebuild it from the
same public data with one command (``make assets``) and get the same model, and its
manifest states where every number came from. The provenance and licence texts below
follow the shared datasets' README; held-out metrics are measured here, at build time.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwnas import __version__
from hwnas.assets import MANIFEST, PAYLOAD, sha256

log = logging.getLogger(__name__)

#: dataset -> (file under the shared datasets folder, architecture column, search space).
TABLES: dict[str, tuple[str, str, str]] = {
    "nb201": ("device-latency/nb201_latency.csv", "arch_str", "nb201"),
    "fbnet": ("device-latency/fbnet_latency.csv", "ops", "fbnet"),
}
FPGA_YAML = "fpga-zcu102/profiled_blocks.yaml"
DEVICES: dict[str, str] = {
    "1080ti": "NVIDIA GeForce GTX 1080 Ti", "2080ti": "NVIDIA GeForce RTX 2080 Ti", "titan_rtx": "NVIDIA Titan RTX",
    "gold_6226": "Intel Xeon Gold 6226 (server CPU)", "silver_4114": "Intel Xeon Silver 4114 (server CPU)",
    "raspi4": "Raspberry Pi 4 (ARM Cortex-A72)", "pixel3": "Google Pixel 3 (phone)",
    "essential_ph_1": "Essential Phone PH-1 (phone)", "samsung_a50": "Samsung Galaxy A50 (phone)",
}
LATENCY_PROVENANCE = (
    "Whole-network latencies published with HELP (Lee et al., NeurIPS 2021, github.com/HayeonLee/HELP), "
    "gathered from HW-NAS-Bench (Li et al., ICLR 2021), BRP-NAS (Dudziak et al., NeurIPS 2020) and HELP's own "
    "measurements; copied unchanged into shared/datasets/device-latency/ (see its README).")
LATENCY_LICENCE = (
    "Data: HW-NAS-Bench is MIT-licensed (github.com/GATECH-EIC/HW-NAS-Bench); the HELP repository that collected "
    "the tables carries no licence file in the copy we checked, so cite HELP, HW-NAS-Bench and BRP-NAS and check "
    "their terms before commercial use. Fitted weights and manifests: MIT, as hwnas.")
FPGA_PROVENANCE = (
    "aw_nas hardware asset profiled_blocks.yaml from the public DPU-Profiling tool that feeds aw_nas: DNNDK per-layer "
    "runtime of each block on a Xilinx ZCU102 (3xB4096 DPU @ 300 MHz, int8) averaged over runs, power the mean "
    "VCCINT (PL core rail) reading of a Power Advantage Tool log during the block's run; copied unchanged into "
    "shared/datasets/fpga-zcu102/ and read with hwnas's awnas-yaml ingest format.")
FPGA_LICENCE = "aw_nas is MIT-licensed (github.com/walkerning/aw_nas); the converted table: MIT, as hwnas."
SPLIT_SEED, TEST_FRAC = 0, 0.2


def device_label(column: str) -> str:
    """``1080ti_32_ms`` -> ``NVIDIA GeForce GTX 1080 Ti, batch 32``."""
    stem = column[:-3] if column.endswith("_ms") else column
    for key, name in DEVICES.items():
        if stem == key:
            return name
        if stem.startswith(key + "_") and stem[len(key) + 1:].isdigit():
            return f"{name}, batch {stem[len(key) + 1:]}"
    return stem


def asset_name(dataset: str, column: str) -> str:
    return f"{dataset}-{column[:-3] if column.endswith('_ms') else column}"


def write_manifest(folder: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """``asset.json`` with the sha256 of every other file in ``folder``."""
    files = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    doc = {**dict(meta), "name": folder.name, "files": files}
    (folder / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True, default=_plain) + "\n")
    return doc


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else str(v)


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(round(TEST_FRAC * n))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def built_info(sources: Mapping[str, Path], **extra: Any) -> dict[str, Any]:
    import torch

    return {"by": "make assets (python -m hwnas.assets.build)", "hwnas": __version__, "torch": torch.__version__,
            "sources": {name: {"file": str(p.name), "sha256": sha256(p)} for name, p in sources.items()},
            "split": {"seed": SPLIT_SEED, "test_fraction": TEST_FRAC}, **extra}


def latency_meta(dataset: str, column: str | None, source: Path) -> dict[str, Any]:
    space = TABLES[dataset][2]
    return {"version": 1, "space": space, "space_options": {}, "target": "latency", "unit": "ms",
            "device": device_label(column) if column else "12 devices (all columns)",
            "measured": {"where": device_label(column) if column else "the 12 device columns of the table",
                         "when": "published 2021 (HW-NAS-Bench, BRP-NAS, HELP)",
                         "what": "end-to-end latency of whole networks, ms"},
            "provenance": LATENCY_PROVENANCE, "licence": LATENCY_LICENCE}


def per_device_model(dataset: str, column: str, nets: list[Any], y: np.ndarray, out: Path, source: Path,
                     model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """One device column -> a fitted cost model folder scored on 20% held-out networks."""
    from hwnas.cost_models.fitting import build_model
    from hwnas.cost_models.metrics import regression_metrics
    from hwnas.cost_models.persistence import save_model

    keep = np.flatnonzero(y >= 0.1)  # degenerate cells measure ~0 (datasets README)
    tr, te = (keep[i] for i in split(len(keep)))
    m = build_model(model, 0, params).fit([nets[i] for i in tr], y[tr])
    metrics = regression_metrics(y[te], m.predict([nets[i] for i in te]))
    metrics = {k: round(float(v), 4) for k, v in metrics.items() if isinstance(v, (int, float))}
    space = TABLES[dataset][2]
    save_model(m, out, {"device": {"name": column, "label": device_label(column)},
                        "training": {"source": source.name, "space": space, "target": column, "unit": "ms",
                                     "train_networks": len(tr), "test_networks": len(te), "test_metrics": metrics}})
    meta = {**latency_meta(dataset, column, source), "kind": "cost_model",
            "title": f"{model} latency model of {device_label(column)} on the {space} space",
            "headline": f"held-out Spearman {metrics['spearman']:.3f}, ±10% {100 * metrics['within_10']:.0f}%",
            "description": f"hwnas {model} cost model fit on {len(tr)} networks of column {column}; predicts whole-"
                           f"network latency (ms) of {space} networks (default space options).",
            "metrics": {"held_out_networks": len(te), **metrics},
            "built": built_info({"table": source}, model=model, params=dict(params))}
    return write_manifest(out, meta)


def base_model(dataset: str, columns: list[str], nets: list[Any], Y: np.ndarray, out: Path, source: Path,
               params: Mapping[str, Any], bench: Mapping[str, Any] | None) -> dict[str, Any]:
    """The multi-device base for few-shot transfer, fit on every device column."""
    from scipy.stats import spearmanr

    from hwnas.cost_models.persistence import save_model
    from hwnas.cost_models.transfer import MultiDeviceModel

    Y = np.where(Y >= 0.1, Y, np.nan)
    tr, te = split(len(nets))
    m = MultiDeviceModel.from_params(params).fit([nets[i] for i in tr], Y[tr], devices=columns)
    pred = m.embed([nets[i] for i in te])
    rho = {c: round(float(spearmanr(Y[te, j][ok], pred[ok, j]).statistic), 4)
           for j, c in enumerate(columns) for ok in [~np.isnan(Y[te, j])]}
    space = TABLES[dataset][2]
    save_model(m, out, {"training": {"source": source.name, "space": space, "target": "latency", "unit": "ms",
                                     "devices": columns, "train_networks": len(tr), "test_networks": len(te),
                                     "test_spearman": rho}})
    return base_manifest(dataset, out, source, m, rho, (len(tr), len(te), len(columns)), params, bench)


def transfer_headline(bench: Mapping[str, Any] | None, held_out: float) -> str:
    """The base's one-line claim: its own held-out figure, and transfer only as measured —
    by bases built like it without a whole device family (it saw every column itself)."""
    head = f"held-out mean Spearman {held_out:.3f} (rows it never saw, of its 12 training devices)"
    runs = [r for r in (bench or {}).get("runs", []) if "family" in r["protocols"]]
    if not runs:
        return head
    r = runs[0]
    k10 = r["protocols"]["family"]["new"]["k=10"]
    return (f"{head}; transfer k=10 to a left-out device family: mean Spearman {k10['mean']:.3f} (worst "
            f"{k10['worst']:.3f}), measured on bases like it ({r['encoder']}, {r['members']} members, "
            f"{r['steps']} steps, {r['base_archs']} archs) without that family")


def base_manifest(dataset: str, out: Path, source: Path, m: Any, rho: Mapping[str, float],
                  sizes: tuple[int, int, int], params: Mapping[str, Any],
                  bench: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manifest of a transfer base saved in ``out``: held-out Spearman per device ``rho``,
    ``sizes`` = (train networks, held-out networks, devices)."""
    space = TABLES[dataset][2]
    n_train, n_test, n_devices = sizes
    metrics: dict[str, Any] = {"held_out_networks": n_test, "mean_spearman_per_device": round(
        float(np.mean(list(rho.values()))), 4), "spearman_per_device": dict(rho)}
    if bench:
        metrics["few_shot_transfer"] = bench
    meta = {**latency_meta(dataset, None, source), "kind": "cost_model",
            "title": f"multi-device base for few-shot transfer on the {space} space",
            "headline": transfer_headline(bench, metrics["mean_spearman_per_device"]),
            "description": f"multi_device model (ensemble of {m.members} {m.encoder.upper()} encoders, one output "
                           f"per device) fit on {n_train} networks x {n_devices} devices; use with `hwnas fit-cost "
                           f"--transfer-from asset:{out.name}` and k >= 3 measured networks of a new device.",
            "metrics": metrics, "built": built_info({"table": source}, params=dict(params))}
    return write_manifest(out, meta)


def latency_table(dataset: str, source: Path, out: Path) -> dict[str, Any]:
    """The whole published table, gzipped byte-stably (no timestamp), for ``table: asset:...``."""
    out.mkdir(parents=True, exist_ok=True)
    raw = source.read_bytes()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw)
    (out / PAYLOAD["table"]).write_bytes(buf.getvalue())
    import pandas as pd

    df = pd.read_csv(source)
    key, space = TABLES[dataset][1], TABLES[dataset][2]
    columns = [c for c in df.columns if c.endswith("_ms")]
    metrics = {"rows": int(len(df)), "devices": len(columns),
               "median_ms_per_device": {c: round(float(df[c].median()), 4) for c in columns}}
    meta = {**latency_meta(dataset, None, source), "kind": "table",
            "title": f"published whole-network latencies of every {space} network row on 12 devices",
            "headline": f"{len(columns)} device columns, key column {key}",
            "description": f"{source.name} as published (ms); use as objective table: asset:{out.name} with "
                           f"column: <device>_ms and key: {key}.",
            "columns": columns, "key": key, "metrics": metrics, "built": built_info({"table": source})}
    return write_manifest(out, meta)


def fpga_store(source: Path, out: Path, tmp: Path) -> dict[str, Any]:
    """The ZCU102 DPU block table: the aw_nas YAML through hwnas's ingest, stored as JSON."""
    from hwnas.assets.stores import dump_store
    from hwnas.profilers.ingest.core import IngestOptions, ingest, plan
    from hwnas.store import Store

    opts = IngestOptions(fmt="awnas-yaml", files=[source], device="zcu102-dpu-b4096",
                         device_notes="Xilinx ZCU102, DPU 3xB4096 @ 300 MHz (DNNDK), int8")
    report = plan(opts)
    with Store(tmp) as st:
        ingest(st, opts, report)
        doc = dump_store(st)
    for m in doc["measurements"]:  # the build machine's path is no provenance
        m["source"] = (m["source"] or "").replace(str(source), source.name)
    return write_store(out, doc, {
        "version": 1, "kind": "store", "space": None, "device": "Xilinx ZCU102, DPU 3xB4096 @ 300 MHz, int8",
        "target": "latency (ms) and energy (mJ) per primitive", "unit": "ms",
        "title": "ZCU102 DPU per-block latency and power (aw_nas profiled_blocks.yaml)",
        "headline": f"{len(doc['primitives'])} primitives, "
                    f"{sum(m['energy_mj'] is not None for m in doc['measurements'])} with energy",
        "description": "store: asset:zcu102-dpu-blocks, device zcu102-dpu-b4096, backend awnas (mbconv relu6 and "
                       "conv 3x3 blocks); entries without a spatial size are skipped, repeats merged.",
        "measured": {"where": "Xilinx ZCU102 board, DPU 3xB4096 @ 300 MHz (DNNDK)", "when": "as published in aw_nas",
                     "what": "per-block latency (ms); power (µW, VCCINT) for some blocks -> energy = power x latency"},
        "provenance": FPGA_PROVENANCE, "licence": FPGA_LICENCE,
        "metrics": {"primitives": len(doc["primitives"]), "entries_skipped": len(report.skipped)},
        "built": built_info({"yaml": source})})


def write_store(out: Path, doc: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    (out / PAYLOAD["store"]).write_text(json.dumps(doc, indent=None, sort_keys=True, separators=(",", ":")) + "\n")
    return write_manifest(out, meta)
