"""The reference CPU primitive tables: ONNX Runtime latencies of the mbv2 space's blocks.

Why two: the default space (224x224 ImageNet input) is what a deployment cares about;
the small setting of ``configs/search-mbv2-digits.yaml`` (32x32, width 0.35, 1 channel)
lets a fresh install run that train-and-measure search against a shipped table. Both
are measurements of one machine: the manifest carries the device fingerprint (CPU
model, cores, threads, runtime versions) so nobody mistakes them for their own CPU; the
store itself refuses to mix them with other devices.
"""
from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.assets import recipes as R

DIGITS = {"resolution": 32, "width": 0.35, "in_channels": 1, "num_classes": 10}
#: asset name -> space options (the ``make assets-cpu`` profile runs use the same).
CPU_TABLES: dict[str, dict[str, Any]] = {"mbv2-cpu-ort": {}, "mbv2-digits-cpu-ort": DIGITS}


def _metrics(store: Any, dev: Mapping[str, Any]) -> dict[str, Any]:
    """Noise of the table (spread between sessions) and, where networks were measured,
    how well the naive sum of primitives ranks and estimates them."""
    from scipy.stats import spearmanr

    from hwnas.cost_models.data import from_store

    rows = store.query(device_id=dev["id"], backend="onnxruntime", kind="primitive", ok_only=True, latest=True)
    cv = [r["std_ms"] / r["median_ms"] for r in rows if r["median_ms"]]
    out: dict[str, Any] = {"primitives": len(rows), "median_cv_between_repeats": round(statistics.median(cv), 4)
                           if cv else None}
    nets = store.query(device_id=dev["id"], backend="onnxruntime", kind="network", ok_only=True, latest=True)
    if len(nets) >= 4:
        d = from_store(store, dev["id"], "onnxruntime")
        from hwnas.cost_models.lut import LUTModel

        lut = LUTModel().fit(d.networks, d.y, d.table)
        pred = lut.predict(d.networks)
        rel = [abs(p / y - 1.0) for p, y in zip(pred, d.y)]
        out.update(networks=len(d.y), naive_sum_mape=round(statistics.fmean(rel), 4),
                   naive_sum_spearman=round(float(spearmanr(d.y, pred).statistic), 4))
    return out


def cpu_assets(stores: Mapping[str, Path], out: Path, only: Sequence[str]) -> list[str]:
    """Package each measured store (``NAME=PATH``) as a store asset with its fingerprint."""
    import fnmatch

    from hwnas.assets.stores import dump_store
    from hwnas.store import Store

    done = []
    for name, path in stores.items():
        if name not in CPU_TABLES:
            raise SystemExit(f"make assets: unknown CPU table {name!r}; known: {', '.join(CPU_TABLES)}")
        if only and not any(fnmatch.fnmatch(name, p) for p in only):
            continue
        with Store(path, create=False) as st:
            devs = st.devices()
            if len(devs) != 1:
                raise SystemExit(f"make assets: {path} must hold exactly one device, has {len(devs)}")
            dev = devs[0]
            doc = dump_store(st, dev["id"], "onnxruntime")
            metrics = _metrics(st, dev)
        created = sorted(m["created"] for m in doc["measurements"])
        flagged = sum(1 for m in doc["measurements"] if m.get("flagged"))
        info = dev["info"]
        opts = CPU_TABLES[name]
        setting = "default options (224x224, width 1.0)" if not opts else ", ".join(f"{k}={v}" for k, v in opts.items())
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        R.write_store(folder, doc, {
            "version": 1, "kind": "store", "space": "mbv2", "space_options": opts, "target": "latency",
            "unit": "ms", "device": f"{info.get('cpu_model')} ({info.get('threads')} thread(s))",
            "fingerprint": dev["fingerprint"], "device_info": info,
            "title": f"ONNX Runtime CPU latency of every mbv2 primitive, {setting}",
            "headline": f"{metrics['primitives']} primitives"
                        + (f", naive sum Spearman {metrics['naive_sum_spearman']:.3f} on {metrics['networks']} "
                           "networks" if "networks" in metrics else ""),
            "description": f"store: asset:{name}, device {dev['name']} (fingerprint {dev['fingerprint']}), backend "
                           "onnxruntime; a reference table of one machine — profile your own CPU with `hwnas "
                           "profile` for real budgets.",
            "measured": {"where": info.get("cpu_model"), "when": f"{created[0]} .. {created[-1]}" if created else "",
                         "what": "median latency per primitive (and sampled networks) with hwnas profile; the "
                                 "timing protocol is stored with each measurement"},
            "provenance": "measured by the hwnas developers with `make assets-cpu` (hwnas profile, ONNX Runtime "
                          "CPU execution provider, 1 thread, batch 1, the default timing protocol: thread CPU "
                          f"time per call); {flagged} of {len(doc['measurements'])} measurements were flagged as "
                          "disturbed by other load on the machine",
            "licence": "MIT, as hwnas", "metrics": metrics, "built": R.built_info({"store": Path(path)})})
        done.append(name)
    return done
