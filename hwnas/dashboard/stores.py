"""What the dashboard shows of a cost store and of fitted cost models, read-only.

Why beside :mod:`.runs`: a store is opened with ``Store(path, readonly=True)`` (SQLite in
read-only mode), so a dashboard pointed at the store a profiler is filling shows it as it
grows and can never change it. Cost models are the folders ``hwnas fit-cost --out`` wrote
under the runs root; the predicted-vs-measured view prices the store's measured networks
of the model's own device with the model, and the breakdown shows one network's latency
node by node (each primitive alone, and as a block inside the network when measured).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: Most flagged measurements listed on the store page (the count is always shown).
MAX_FLAGGED = 200
#: Most networks priced on a cost-model page.
MAX_NETWORKS = 2000


def open_store(path: Path) -> Any:
    """The store, read-only (a file that is not a store raises a one-line StoreError)."""
    from hwnas.store import Store

    return Store(path, readonly=True)


def store_view(path: Path) -> dict[str, Any]:
    """Devices, per (device, backend) coverage of primitives and networks, flagged rows."""
    with open_store(path) as st:
        summary = st.summary()
        devices = st.devices()
        n_prims, n_nets = summary["primitives"], summary["networks"]
        cover: dict[tuple[str, str], dict[str, Any]] = {}
        flagged: list[dict[str, Any]] = []
        n_flagged = 0
        for d in st.query(latest=True):
            key = (d["device_fp"], d["backend"])
            c = cover.setdefault(key, {"device": d["device_name"], "fingerprint": d["device_fp"][:16],
                                       "backend": d["backend"], "primitives": 0, "networks": 0, "blocks": 0,
                                       "failed": 0, "flagged": 0})
            if d["error"]:
                c["failed"] += 1
            elif d["kind"] in ("primitive", "network", "block"):
                c[d["kind"] + "s"] += 1
            if d.get("flagged"):
                c["flagged"] += 1
                n_flagged += 1
                if len(flagged) < MAX_FLAGGED:
                    flagged.append({"id": d["id"], "kind": d["kind"], "target": d["target"][:90],
                                    "device": d["device_name"], "backend": d["backend"],
                                    "latency_ms": d["latency_ms"], "median_ms": d["median_ms"],
                                    "created": d["created"]})
    for c in cover.values():
        c["primitive_coverage"] = f"{c['primitives']}/{n_prims}"
        c["network_coverage"] = f"{c['networks']}/{n_nets}"
    return {"path": str(path), "summary": summary, "devices": devices, "coverage": list(cover.values()),
            "flagged": flagged, "n_flagged": n_flagged}


def find_cost_models(root: Path, max_depth: int = 4) -> dict[str, Path]:
    """Model id (relative posix path) -> folder, for every fit-cost model folder under ``root``."""
    found: dict[str, Path] = {}
    root = root.resolve()

    def walk(d: Path, depth: int) -> None:
        if depth > max_depth:
            return
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        names = {e.name for e in entries}
        if "manifest.json" in names and "model.json" in names:
            real = d.resolve()
            if root in real.parents:
                found[d.relative_to(root).as_posix()] = real
            return
        for e in entries:
            if e.is_dir() and not e.name.startswith("."):
                walk(e, depth + 1)

    walk(root, 0)
    return found


def model_meta(folder: Path) -> dict[str, Any]:
    """A model folder's manifest, flattened to what the pages show."""
    try:
        m = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {"model": folder.name, "error": "unreadable manifest.json"}
    training = m.get("training") or {}
    metrics = training.get("test_metrics") or {}
    dev = m.get("device") or {}
    return {"model": m.get("model", folder.name), "device": dev.get("name", "?"),
            "fingerprint": str(dev.get("fingerprint", "")), "backend": training.get("backend", ""),
            "target": training.get("target", ""), "unit": training.get("unit", ""),
            "train_networks": training.get("train_networks"), "test_networks": training.get("test_networks"),
            "mape": metrics.get("mape"), "rmse": metrics.get("rmse"), "spearman": metrics.get("spearman"),
            "created": m.get("created", "")}


def predicted_vs_measured(folder: Path, store: Path | None) -> dict[str, Any]:
    """The model's predictions for the store's measured networks of the model's device and
    backend (train and held-out networks together: the manifest does not list which were
    held out; its held-out metrics are shown beside)."""
    meta = model_meta(folder)
    out: dict[str, Any] = {"meta": meta, "points": [], "note": ""}
    if store is None:
        out["note"] = "start the dashboard with --store FILE to see predictions against measurements"
        return out
    from hwnas.cost_models import load_model
    from hwnas.errors import HwnasError

    metric = "energy_mj" if meta["target"] == "energy" else "latency_ms"
    with open_store(store) as st:
        devs = [d for d in st.devices() if d["fingerprint"] == meta["fingerprint"]]
        if not devs:
            out["note"] = f"{store} holds no measurements of this model's device ({meta['fingerprint'][:16]})"
            return out
        rows = [r for r in st.query(device_id=devs[0]["id"], backend=meta["backend"] or None, kind="network",
                                    ok_only=True, latest=True) if r.get(metric) is not None][:MAX_NETWORKS]
        nets = [st.network(r["target"]) for r in rows]
    try:
        pred = load_model(folder).predict(nets) if nets else []
    except HwnasError as exc:
        out["note"] = f"the model cannot price these networks: {exc}"
        return out
    out["points"] = [{"network": r["target"], "measured": float(r[metric]), "predicted": float(p)}
                     for r, p in zip(rows, pred) if math.isfinite(float(p))]
    return out


def breakdown(folder: Path, store: Path, network: str | None) -> dict[str, Any]:
    """One measured network node by node: each primitive alone (the store's table) and as
    a block inside the network (when measured block by block), with the whole network's
    measurement. ``network`` is a hash; default the first measured network."""
    meta = model_meta(folder)
    with open_store(store) as st:
        devs = [d for d in st.devices() if d["fingerprint"] == meta["fingerprint"]]
        if not devs:
            return {"nodes": [], "network": None, "measured": None}
        dev_id, backend = devs[0]["id"], meta["backend"]
        nets = st.query(device_id=dev_id, backend=backend or None, kind="network", ok_only=True, latest=True)
        known = {r["target"]: r for r in nets}
        if not known:
            return {"nodes": [], "network": None, "measured": None}
        h = network if network in known else next(iter(known))
        spec = st.network(h)
        table = st.table(dev_id, backend, settings=known[h]["settings"]) if backend else {}
        blocks = {r["position"]: r["latency_ms"] for r in st.query(device_id=dev_id, backend=backend or None,
                                                                     kind="block", network=h, ok_only=True,
                                                                     latest=True)}
    nodes = [{"i": i, "op": p.op, "key": p.key, "alone_ms": table.get(p.key), "in_network_ms": blocks.get(i)}
             for i, p in enumerate(spec.nodes)]
    return {"nodes": nodes, "network": h, "measured": known[h]["latency_ms"], "networks": list(known)[:200]}


__all__ = ["breakdown", "find_cost_models", "model_meta", "open_store", "predicted_vs_measured", "store_view"]
