"""aw_nas hardware assets (``profiled_blocks.yaml``): read them, and write hwnas tables back.

aw_nas (the seed framework) stores per-primitive DPU results as a YAML list of
``{prim_type, C, C_out, expansion, kernel_size, spatial_size, stride, affine,
performances: {latency: ms, power: µW}}``. Two primitive types occur:

* ``mobilenet_v2_block`` -> ``mbconv`` with ``act relu6``: aw_nas builds this block as
  the MobileNetV2 inverted residual, whose activations are ReLU6, and the DPU fuses
  ReLU6 into the convolutions, so relu6 is what was timed.
* ``conv_3x3`` -> ``conv`` with ``kernel 3`` and ``act relu`` (aw_nas's conv-BN-ReLU).

``power`` is the mean PL-core (VCCINT) rail power during the block's run, so energy
per inference is power x latency (W x ms = mJ); the method is stored with each row.
Entries with ``spatial_size: null`` have no input size and cannot become a primitive;
they are reported as skipped. Repeated entries of one primitive become samples of one
measurement instead of silently replacing each other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwnas.errors import ConfigError, HwnasError
from hwnas.inputs import first_line, short
from hwnas.primitives import Primitive
from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record, Skipped, fail, read_lines
from hwnas.registry import register
from hwnas.store import Store
from hwnas.yamlio import limited_loader

#: aw_nas prim_type -> (hwnas op, fixed fields).
PRIM_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "mobilenet_v2_block": ("mbconv", {"act": "relu6"}),
    "conv_3x3": ("conv", {"kernel": 3, "act": "relu"}),
}
ENERGY_METHOD = "mean_power_x_latency"


def _int(entry: dict[str, Any], key: str, fail_at: Any, *, minimum: int = 1) -> int:
    v = entry.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise fail_at(f"expected {key} to be an integer >= {minimum}, got {v!r}")
    return v


def _num(value: Any, what: str, fail_at: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise fail_at(f"expected {what} to be a number >= 0, got {value!r}")
    return float(value)


def entry_primitive(entry: dict[str, Any], fail_at: Any) -> Primitive:
    """The hwnas primitive of one (validated) aw_nas entry."""
    op, fixed = PRIM_TYPES[entry["prim_type"]]
    size = _int(entry, "spatial_size", fail_at)
    kw: dict[str, Any] = dict(fixed)
    if op == "mbconv":
        kw["kernel"] = _int(entry, "kernel_size", fail_at)
        exp = entry.get("expansion")
        kw["expansion"] = _num(exp, "expansion", fail_at) if exp is not None else 1
    affine = entry.get("affine", True)
    if not isinstance(affine, bool):
        raise fail_at(f"expected affine to be true or false, got {affine!r}")
    c_in, c_out, stride = _int(entry, "C", fail_at), _int(entry, "C_out", fail_at), _int(entry, "stride", fail_at)
    try:
        return Primitive(op, c_in, c_out, size, size, stride=stride,
                         extras=(() if affine else (("affine", False),)), **kw)
    except HwnasError as exc:
        raise fail_at(str(exc)) from None


@register("ingest_format", "awnas-yaml")
class AwnasYamlFormat(LatencyFormat):
    """aw_nas profiled_blocks.yaml: per-primitive DPU latency (ms) and power (µW)."""

    backend = "awnas"
    precision = "int8"
    needs_mapping = False

    def parse(self, path: Path) -> Parsed:
        path = Path(path)
        data, node = _load(path)
        if not isinstance(data, list) or not data:
            raise fail(path, 1, f"expected a YAML list of aw_nas entries, got {type(data).__name__}")
        lines = [item.start_mark.line + 1 for item in node.value]
        out = Parsed(path, "awnas-yaml", notes={"entries": len(data)})
        by_key: dict[str, Record] = {}
        for entry, line in zip(data, lines):
            _add_entry(path, entry, line, out, by_key)
        for rec in by_key.values():
            powers, energies = rec.extra.pop("_power", []), rec.extra.pop("_energy", [])
            if powers:
                rec.power_w = sum(powers) / len(powers)
                rec.energy_mj = sum(energies) / len(energies)
                rec.extra.update({"energy_method": ENERGY_METHOD, "power_rail": "VCCINT (aw_nas mean, µW in file)",
                                  "power_entries": len(powers)})
            out.records.append(rec)
        return out


def _load(path: Path) -> tuple[Any, Any]:
    """(data, root node) of the YAML file; the node keeps each entry's line."""
    text = "\n".join(read_lines(path))
    loader = None
    try:
        loader = limited_loader(path)(text)
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise fail(path, mark.line + 1 if mark else None,
                   f"expected valid YAML ({short(getattr(exc, 'problem', None) or first_line(exc))})") from None
    except ConfigError as exc:  # too many aliases
        raise fail(path, None, str(exc).split(": ", 1)[-1]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _add_entry(path: Path, entry: Any, line: int, out: Parsed, by_key: dict[str, Record]) -> None:
    """One aw_nas entry: merged into its primitive's record, or skipped with the reason."""
    def fail_at(msg: str, _line: int = line) -> Exception:
        return fail(path, _line, msg)

    if not isinstance(entry, dict):
        raise fail_at(f"expected a mapping with prim_type, C, C_out, ..., got {short(entry)}")
    ptype = entry.get("prim_type")
    perf = entry.get("performances")
    if not isinstance(ptype, str):
        raise fail_at(f"expected a prim_type string, got {ptype!r}")
    if not isinstance(perf, dict) or "latency" not in perf:
        raise fail_at("expected performances: {latency: ms, ...}")
    latency = _num(perf["latency"], "performances.latency (ms)", fail_at)
    power_uw = perf.get("power")
    power_w = None if power_uw is None else _num(power_uw, "performances.power (µW)", fail_at) * 1e-6
    where = f"{path.name}:{line}"
    if ptype not in PRIM_TYPES:
        _int(entry, "C", fail_at)
        out.skipped.append(Skipped(where, ptype, f"prim_type {ptype!r} has no hwnas equivalent "
                                                 f"(known: {', '.join(PRIM_TYPES)})"))
        return
    if entry.get("spatial_size", 0) is None:
        _int(entry, "C", fail_at), _int(entry, "C_out", fail_at)
        out.skipped.append(Skipped(where, f"{ptype} C{entry['C']}>{entry['C_out']}",
                                   "spatial_size is null: input size unknown, no primitive key"))
        return
    prim = entry_primitive(entry, fail_at)
    rec = by_key.get(prim.key)
    if rec is None:
        rec = by_key[prim.key] = Record(name=prim.key, samples_ms=[], where=where, primitive=prim,
                                        settings={"format": "awnas"}, extra={"entries": 0, "lines": []})
    rec.samples_ms.append(latency)
    rec.extra["entries"] += 1
    rec.extra["lines"].append(line)
    if power_w is not None:
        rec.extra.setdefault("_power", []).append(power_w)
        rec.extra.setdefault("_energy", []).append(power_w * latency)


def to_awnas_entry(prim: Primitive, latency_ms: float, power_w: float | None) -> dict[str, Any] | None:
    """One aw_nas entry for a primitive, or None when aw_nas has no such prim_type."""
    if prim.h != prim.w or prim.groups != 1 or prim.se or any(k != "affine" for k, _ in prim.extras):
        return None
    base: dict[str, Any] = {"C": prim.c_in, "C_out": prim.c_out, "affine": bool(prim.extra("affine", True)),
                            "spatial_size": prim.h, "stride": prim.stride}
    if prim.op == "mbconv" and prim.act == "relu6":
        base.update(prim_type="mobilenet_v2_block", expansion=prim.expansion, kernel_size=prim.kernel)
    elif prim.op == "conv" and prim.kernel == 3 and prim.act == "relu" and prim.expansion == 1:
        base.update(prim_type="conv_3x3")
    else:
        return None
    perf: dict[str, Any] = {"latency": float(latency_ms)}
    if power_w is not None:
        perf["power"] = float(power_w) * 1e6
    base["performances"] = perf
    return base


def export_awnas(store: Store, device: str | int, backend: str, out: str | Path) -> dict[str, Any]:
    """Write a store table (device, backend) as an aw_nas ``profiled_blocks.yaml``.

    Returns counts and the keys that have no aw_nas form (other ops, SE, groups, ...).
    """
    dev = store.find_device(device)
    lat = store.table(dev["id"], backend)
    power = store.table(dev["id"], backend, metric="power_w")
    entries, skipped = [], []
    for key in sorted(lat):
        entry = to_awnas_entry(store.primitive(key), lat[key], power.get(key))
        if entry is None:
            skipped.append(key)
        else:
            entries.append(entry)
    Path(out).write_text(yaml.safe_dump(entries, sort_keys=True), encoding="utf-8")
    return {"path": str(out), "device": dev["name"], "backend": backend, "written": len(entries),
            "with_power": sum("power" in e["performances"] for e in entries), "skipped": skipped}
