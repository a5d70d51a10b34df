"""Cost stores as assets: a JSON dump of devices, primitives, networks and measurements.

Why JSON and not the SQLite file itself: opening a store switches it to WAL mode and
writes to it, which would change the bytes of an installed asset (and fail in a
read-only site-packages); JSON is also reviewable in a diff and byte-stable across
rebuilds. When an ``asset:NAME`` store is used, :func:`materialise` loads the dump into
a private SQLite file in the temp folder (named by the dump's sha256, written under a
temporary name and renamed, so a crash never leaves a half-built store that a later
run would trust) and returns its path; every reader then works unchanged.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from hwnas.assets import PAYLOAD, Asset, sha256
from hwnas.errors import AssetError, HwnasError

FORMAT = 1
_MEASUREMENT_FIELDS = ("kind", "target", "network", "position", "backend", "settings", "samples", "median_ms",
                       "energy_mj", "power_w", "error", "versions", "source", "extra", "created", "latency_ms",
                       "flagged", "evidence")


def dump_store(store: Any, device: str | int | None = None, backend: str | None = None) -> dict[str, Any]:
    """Everything of ``store`` (optionally one device / backend) as plain JSON values."""
    dev_id = store.find_device(device)["id"] if device is not None else None
    rows = store.query(device_id=dev_id, backend=backend)
    used_devices = sorted({r["device_id"] for r in rows})
    devices = {d["id"]: d for d in store.devices()}
    nets = {r["target"] for r in rows if r["kind"] == "network"} | {r["network"] for r in rows if r["network"]}
    networks = [{"spec": n.to_dict(), "arch": arch} for n, arch in store.networks() if n.hash in nets]
    prim_keys = sorted({r["target"] for r in rows if r["kind"] == "primitive"})
    return {
        "format": FORMAT,
        "devices": [{"name": devices[i]["name"], "info": devices[i]["info"], "created": devices[i]["created"]}
                    for i in used_devices],
        "primitives": [store.primitive(k).to_dict() for k in prim_keys],
        "networks": networks,
        "measurements": [{"device": used_devices.index(r["device_id"]), **{k: r[k] for k in _MEASUREMENT_FIELDS}}
                         for r in rows],
    }


def load_store(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write a :func:`dump_store` document into a new SQLite store at ``path``."""
    from hwnas.primitives import NetworkSpec, Primitive
    from hwnas.store import Device, Measurement, Store

    if doc.get("format") != FORMAT:
        raise AssetError(f"store dump format {doc.get('format')!r}, this hwnas reads {FORMAT}")
    with Store(path) as st:
        ids = [st.add_device(Device.from_dict(d["info"]), created=d["created"]) for d in doc["devices"]]
        for p in doc["primitives"]:
            st.add_primitive(Primitive.from_dict(p))
        for n in doc["networks"]:
            net = NetworkSpec.from_dict(n["spec"])
            st.add_network(net, arch=n.get("arch"))
        items = []
        for m in doc["measurements"]:
            samples = tuple(m["samples"] or ())
            items.append((ids[m["device"]], m["created"], Measurement(
                kind=m["kind"], target=m["target"], backend=m["backend"], settings=m["settings"],
                samples_ms=samples, error=m["error"], energy_mj=m["energy_mj"], power_w=m["power_w"],
                network=m["network"], position=m["position"], versions=m["versions"] or {}, source=m["source"],
                extra=m["extra"] or {}, median_override=None if samples or m["error"] else m["median_ms"],
                estimate_ms=m.get("latency_ms") if samples else None, flagged=m.get("flagged"),
                evidence=m.get("evidence") or {})))
        with st.transaction():  # all rows or none; each keeps when it was measured
            for dev_id, created, meas in items:
                st.add_measurement(dev_id, meas, created=created)
    return Path(path)


def _cache_dir() -> Path:
    who = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"hwnas-assets-{who}"


def materialise(asset: Asset) -> Path:
    """A private SQLite copy of a (verified) store asset; built once per content."""
    src = asset.dir / PAYLOAD["store"]
    digest = asset.files.get(PAYLOAD["store"]) or sha256(src)
    out = _cache_dir() / f"{asset.name}-{digest[:16]}.sqlite"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        load_store(json.loads(src.read_text()), tmp)
        for suffix in ("-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, out)
    except (HwnasError, OSError, KeyError, TypeError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise AssetError(f"asset {asset.name}: cannot build its store ({exc})") from None
    return out
