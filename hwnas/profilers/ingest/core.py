"""Ingest core: parse everything, validate everything, then write once.

Order matters for the guarantee users rely on ("a bad file stores nothing"):

1. parse every latency file and the power / segment files (parsers raise on the first
   malformed line with file, line and what was expected);
2. map names to targets, attach energy, merge repeats, build every ``Measurement``
   (its constructor validates too);
3. open one store transaction and write device, primitives, networks, measurements.

Any exception before or during step 3 leaves the store as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hwnas import __version__, registry
from hwnas.errors import HwnasError, IngestError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.ingest.base import LatencyFormat, Parsed, Record, Skipped
from hwnas.profilers.ingest.energy import attach_energy
from hwnas.profilers.ingest.mapping import Resolver, layer_primitive
from hwnas.profilers.ingest.power import parse_power, parse_segments
from hwnas.store import Device, Measurement, Store

UNMAPPED_POLICIES = ("layer", "skip", "error")


@dataclass
class IngestOptions:
    """What ``hwnas ingest`` was asked to do (CLI flags one to one)."""

    fmt: str
    files: Sequence[str | Path]
    device: str
    backend: str | None = None
    manifest: str | Path | None = None
    mapping: str | Path | None = None
    power: str | Path | None = None
    power_format: str = "pat"
    rails: str | None = None
    segments: str | Path | None = None
    clock_offset_h: float = 0.0
    inferences: int | None = None
    unmapped: str = "layer"
    precision: str | None = None
    device_notes: str | None = None


@dataclass
class IngestReport:
    """What was (or would be) stored, per file, and what was skipped and why."""

    device: str
    fingerprint: str
    backend: str
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    primitives: dict[str, Primitive] = field(default_factory=dict)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    device_record: Device | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "fingerprint": self.fingerprint, "backend": self.backend,
                "files": self.files, "stored": len(self.measurements),
                "with_energy": sum(m.energy_mj is not None for m in self.measurements),
                "skipped": [{"where": s.where, "name": s.name, "reason": s.reason} for s in self.skipped]}


def _target(rec: Record, fmt: LatencyFormat, resolver: Resolver, unmapped: str) -> tuple[str, Any] | None:
    if rec.primitive is not None:
        return ("primitive", rec.primitive)
    if rec.network is not None:
        return ("network", rec.network)
    hit = resolver.resolve(rec.name)
    if hit is not None:
        return hit
    if fmt.strict_names or unmapped == "error":
        raise IngestError(f"{rec.where}: expected a name found in the manifest or mapping (or a primitive key), "
                          f"got {rec.name!r}")
    if unmapped == "skip":
        return None
    return ("primitive", layer_primitive(rec.name))


def _merge(group: list[Record]) -> Record:
    """Repeated items (same target and settings) become one measurement with all samples."""
    if len(group) == 1:
        return group[0]
    first = group[0]
    energies = [r.energy_mj for r in group if r.energy_mj is not None]
    powers = [r.power_w for r in group if r.power_w is not None]
    extra = dict(first.extra)
    extra["merged_from"] = [r.where for r in group]
    return Record(name=first.name, samples_ms=[s for r in group for s in r.samples_ms], where=first.where,
                  primitive=first.primitive, network=first.network,
                  energy_mj=sum(energies) / len(energies) if energies else None,
                  power_w=sum(powers) / len(powers) if powers else None, settings=first.settings, extra=extra)


def _check(opts: IngestOptions) -> None:
    if opts.unmapped not in UNMAPPED_POLICIES:
        raise IngestError(f"unmapped: expected one of {', '.join(UNMAPPED_POLICIES)}, got {opts.unmapped!r}")
    if opts.manifest and opts.mapping:
        raise IngestError("--manifest and --mapping: give one of them, not both")
    if not opts.files:
        raise IngestError("expected at least one latency file")
    # Options that only mean something together: name both, never ignore one silently.
    needs = [(opts.segments, "--segments", opts.power, "--power", "a run segmentation splits a power log"),
             (opts.rails, "--rails", opts.power, "--power", "rails are columns of a power log"),
             (opts.inferences is not None, "--inferences", opts.power, "--power",
              "energy per inference divides a power log's integral"),
             (opts.clock_offset_h, "--clock-offset", opts.segments, "--segments",
              "the offset shifts segment times onto the power log's clock")]
    for given, flag, other, other_flag, why in needs:
        if given and not other:
            raise IngestError(f"{flag} needs {other_flag}: {why}")
    if opts.inferences is not None and opts.inferences < 1:
        raise IngestError(f"inferences: expected a positive count, got {opts.inferences}")


Mapped = tuple[Parsed, Record, str, Any]


def _map_records(parsed: list[Parsed], fmt: LatencyFormat, resolver: Resolver, opts: IngestOptions,
                 report: IngestReport) -> list[Mapped]:
    """Each record with its target (primitive or network); unmapped ones skipped or refused."""
    mapped: list[Mapped] = []
    for p in parsed:
        report.skipped.extend(p.skipped)
        for rec in p.records:
            hit = _target(rec, fmt, resolver, opts.unmapped)
            if hit is None:
                report.skipped.append(Skipped(rec.where, rec.name, "no mapping for this name (unmapped: skip)"))
                continue
            if fmt.strict_names and resolver.settings and set(rec.settings) == {"format"}:
                rec.settings = {**rec.settings, **resolver.settings}
            mapped.append((p, rec, hit[0], hit[1]))
    return mapped


def _group(mapped: list[Mapped]) -> dict[tuple[str, str, str], list[Mapped]]:
    """Repeats per (target, settings) merge; failures stay individual rows."""
    groups: dict[tuple[str, str, str], list[Mapped]] = {}
    for n, (p, rec, kind, obj) in enumerate(mapped):
        ident = obj.key if kind == "primitive" else obj.hash
        sig = repr(sorted(rec.settings.items())) if rec.error is None else f"error#{n}"
        groups.setdefault((kind, ident, sig), []).append((p, rec, kind, obj))
    return groups


def _measurement(members: list[Mapped], kind: str, ident: str, backend: str, fmt_name: str) -> tuple[Measurement, Record]:
    rec = _merge([m[1] for m in members])
    files = sorted({m[0].path.name for m in members})
    extra = {**rec.extra, "name": rec.name, "where": rec.where}
    try:
        m = Measurement(
            kind=kind, target=ident, backend=backend, settings=rec.settings, samples_ms=tuple(rec.samples_ms),
            error=rec.error, energy_mj=rec.energy_mj, power_w=rec.power_w,
            versions={"hwnas": __version__, "ingest_format": fmt_name}, source=f"ingest:{fmt_name} {' '.join(files)}",
            extra=extra, median_override=rec.median_ms if len(members) == 1 else None)
    except HwnasError as exc:
        raise IngestError(f"{rec.where}: {exc}") from None
    return m, rec


def _fill(report: IngestReport, parsed: list[Parsed], mapped: list[Mapped], backend: str, fmt_name: str) -> None:
    per_file: dict[Path, dict[str, Any]] = {
        p.path: {"file": p.path.name, "format": p.fmt, "items": len(p.records), "stored": 0, "primitives": set(),
                 "networks": set(), "with_energy": 0, "skipped": len(p.skipped), **({"notes": p.notes} if p.notes else {})}
        for p in parsed}
    for (kind, ident, _), members in _group(mapped).items():
        m, rec = _measurement(members, kind, ident, backend, fmt_name)
        report.measurements.append(m)
        (report.primitives if kind == "primitive" else report.networks)[ident] = members[0][3]
        info = per_file[members[0][0].path]
        info["stored"] += 1
        info["primitives" if kind == "primitive" else "networks"].add(ident)
        info["with_energy"] += rec.energy_mj is not None
    for p in parsed:
        info = per_file[p.path]
        info["primitives"], info["networks"] = len(info["primitives"]), len(info["networks"])
        report.files.append(info)


def plan(opts: IngestOptions) -> IngestReport:
    """Parse, validate, map and build measurements; touches no store."""
    _check(opts)
    fmt: LatencyFormat = registry.build("ingest_format", opts.fmt)
    resolver = Resolver.from_files(opts.manifest, opts.mapping)
    parsed: list[Parsed] = [fmt.parse(Path(f)) for f in opts.files]
    log = parse_power(Path(opts.power), opts.power_format, opts.rails) if opts.power else None
    segments = parse_segments(Path(opts.segments)) if opts.segments else None
    backends = {p.backend for p in parsed if p.backend}
    if len(backends) > 1 and not opts.backend:
        raise IngestError(f"the files name different backends ({', '.join(sorted(backends))}); name one backend")
    backend = opts.backend or (backends.pop() if backends else fmt.backend)
    device = Device(name=opts.device, kind="offline", precision=opts.precision or fmt.precision,
                    notes=opts.device_notes)
    report = IngestReport(device.name, device.fingerprint, backend, device_record=device)
    mapped = _map_records(parsed, fmt, resolver, opts, report)
    if log is not None:
        report.skipped.extend(log.skipped)
        recs = [m[1] for m in mapped]
        names = {i: {m[1].name, m[3].key if m[2] == "primitive" else m[3].hash} for i, m in enumerate(mapped)}
        report.skipped.extend(attach_energy(recs, names, log, segments, opts.clock_offset_h, opts.inferences))
    _fill(report, parsed, mapped, backend, opts.fmt)
    if not report.measurements:
        reasons = sorted({s.reason for s in report.skipped})
        why = f"{len(report.skipped)} item(s) skipped: {'; '.join(reasons)[:160]}" if reasons else "no items found"
        raise IngestError(f"{', '.join(Path(f).name for f in opts.files)[:120]}: nothing to store ({why})")
    return report


def ingest_files(opts: IngestOptions, store: str | Path, *, dry_run: bool = False) -> IngestReport:
    """Plan (every file parsed and validated before the store is touched), then store it
    all in one transaction unless ``dry_run``."""
    report = plan(opts)
    if not dry_run:
        with Store(store) as st:
            ingest(st, opts, report)
    return report


def ingest(store: Store, opts: IngestOptions, report: IngestReport | None = None) -> IngestReport:
    """Parse and validate everything, then store it all in one transaction (or nothing).

    ``report`` is a result of :func:`plan` already made (the CLI plans before it opens
    the store, so a rejected file does not even create an empty store).
    """
    report = report if report is not None else plan(opts)
    assert report.device_record is not None
    with store.transaction():
        dev_id = store.add_device(report.device_record)
        for prim in report.primitives.values():
            store.add_primitive(prim)
        for net in report.networks.values():
            store.add_network(net)
        store.add_measurements(dev_id, report.measurements)
    return report
