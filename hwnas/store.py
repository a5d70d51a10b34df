"""The cost store: one SQLite file holding devices, primitives, networks and measurements.

Why SQLite: embedded, one file, real SQL, and atomic transactions, so a profiling job
killed at any moment loses at most the item in flight. The store is append-only:
measurements are never updated in place; a rerun adds rows and readers take the
newest. WAL mode plus a busy timeout lets two processes write at once.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import sqlite3
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from hwnas.errors import StoreError, ValidationError
from hwnas.primitives import NetworkSpec, Primitive

SCHEMA_VERSION = 2
DEFAULT_STORE = "hwnas-store.sqlite"

#: What a measurement is of.
KINDS = ("primitive", "network", "block")

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,   -- sha256 of the canonical JSON below
    info TEXT NOT NULL,                  -- JSON of the Device record
    created TEXT NOT NULL
);
CREATE TABLE primitives (key TEXT PRIMARY KEY, op TEXT NOT NULL, spec TEXT NOT NULL);
CREATE TABLE networks (
    hash TEXT PRIMARY KEY,
    space TEXT,
    arch TEXT,                           -- JSON of the space's architecture, if any
    spec TEXT NOT NULL
);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('primitive', 'network', 'block')),
    target TEXT NOT NULL,                -- primitive key or network hash
    network TEXT,                        -- for kind='block': the network it was measured in
    position INTEGER,                    -- for kind='block': node index in that network
    device_id INTEGER NOT NULL REFERENCES devices(id),
    backend TEXT NOT NULL,
    settings TEXT NOT NULL,              -- canonical JSON of the timing protocol etc.
    settings_hash TEXT NOT NULL,
    samples TEXT NOT NULL,               -- JSON list of raw samples in ms
    median_ms REAL, mean_ms REAL, std_ms REAL, n INTEGER NOT NULL,
    energy_mj REAL, power_w REAL,
    error TEXT,                          -- NULL on success, else why it failed (data, not a sentinel)
    versions TEXT NOT NULL,              -- JSON of tool versions
    source TEXT,                         -- e.g. 'hwnas profile', 'ingest:dnndk file.log'
    extra TEXT,                          -- JSON of anything else (energy method, ...)
    created TEXT NOT NULL
);
CREATE INDEX measurements_lookup ON measurements (device_id, backend, settings_hash, kind, target);
CREATE INDEX measurements_network ON measurements (network);
"""

_SCHEMA_V2 = """
CREATE TABLE rules (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    backend TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- e.g. 'fusion': measured kernel-detection rules
    settings TEXT NOT NULL,              -- canonical JSON of how they were measured
    data TEXT NOT NULL,                  -- JSON of the rules themselves
    versions TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX rules_lookup ON rules (device_id, backend, kind);
"""


def _run_script(c: sqlite3.Connection, script: str) -> None:
    for stmt in script.split(";"):
        if stmt.strip():
            c.execute(stmt)


#: Migrations: MIGRATIONS[v] upgrades a store from version v to v+1. Version 2 adds the
#: ``rules`` table: what a device/backend fuses and how it lays data out is measured, and
#: belongs with the device like its measurements.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: lambda c: _run_script(c, _SCHEMA_V2)}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Device:
    """Fingerprint of the hardware and software a measurement was made on.

    Two measurements are comparable only on the same fingerprint; the store never
    mixes devices silently. ``name`` is a human label (``cpu``, ``zcu102-dpu-b4096``).
    """

    name: str
    kind: str = "cpu"                       # cpu | gpu | offline
    cpu_model: str | None = None
    cores: int | None = None
    threads: int | None = None
    governor: str | None = None
    gpu_name: str | None = None
    gpu_driver: str | None = None
    runtimes: tuple[tuple[str, str], ...] = ()
    precision: str = "fp32"
    notes: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValidationError(f"Device.name: expected a non-empty string, got {self.name!r}")
        rt = self.runtimes
        if isinstance(rt, Mapping):
            rt = tuple(rt.items())
        object.__setattr__(self, "runtimes", tuple(sorted((str(k), str(v)) for k, v in rt)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["runtimes"] = dict(self.runtimes)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Device":
        kw = dict(data)
        kw["runtimes"] = tuple(dict(kw.get("runtimes") or {}).items())
        return cls(**kw)

    @property
    def fingerprint(self) -> str:
        return _sha(canonical_json(self.to_dict()), 16)


@dataclass(frozen=True)
class Measurement:
    """One timing (or failure) of a primitive, a network, or a block inside a network."""

    kind: str
    target: str
    backend: str
    settings: Mapping[str, Any]
    samples_ms: tuple[float, ...] = ()
    error: str | None = None
    energy_mj: float | None = None
    power_w: float | None = None
    network: str | None = None
    position: int | None = None
    versions: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Summary statistics for offline ingests that only report aggregates.
    median_override: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"Measurement.kind: expected one of {KINDS}, got {self.kind!r}")
        samples = tuple(float(s) for s in self.samples_ms)
        for s in samples:
            if not math.isfinite(s) or s < 0:
                raise ValidationError(f"Measurement.samples_ms: bad sample {s!r} for {self.target}")
        object.__setattr__(self, "samples_ms", samples)
        if self.error is None and not samples and self.median_override is None:
            raise ValidationError(f"Measurement of {self.target}: no samples and no error")
        if self.kind == "block" and (self.network is None or self.position is None):
            raise ValidationError("Measurement: a block measurement needs network and position")

    @property
    def median_ms(self) -> float | None:
        if self.median_override is not None:
            return float(self.median_override)
        return statistics.median(self.samples_ms) if self.samples_ms else None

    @property
    def mean_ms(self) -> float | None:
        if self.samples_ms:
            return statistics.fmean(self.samples_ms)
        return self.median_ms

    @property
    def std_ms(self) -> float | None:
        return statistics.pstdev(self.samples_ms) if len(self.samples_ms) > 1 else (0.0 if self.samples_ms else None)


def settings_hash(settings: Mapping[str, Any]) -> str:
    return _sha(canonical_json(dict(settings)), 12)


class Store:
    """A cost store on disk. Use as a context manager or call :meth:`close`.

    ``Store(path)`` creates the file if missing; ``Store(path, create=False)`` refuses
    a missing file with a one-line message (read-only commands use that).
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, *, create: bool = True, timeout: float = 60.0) -> None:
        self.path = Path(path)
        if str(path) != ":memory:" and not self.path.exists():
            if not create:
                raise StoreError(f"no cost store at {self.path} (create one with `hwnas profile` or `hwnas ingest`)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connect(str(path), timeout)
                break
            except sqlite3.OperationalError as exc:
                # Switching to WAL can report "locked" without waiting when another
                # process is creating the same file; retry until the timeout.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    self.conn.close()
                    time.sleep(0.05)
                    continue
                raise StoreError(f"{self.path}: not a readable hwnas cost store ({exc})") from None
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: not a readable hwnas cost store ({exc})") from None

    def _connect(self, path: str, timeout: float) -> None:
        self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._init_schema()

    # -- schema -------------------------------------------------------------------
    def _init_schema(self) -> None:
        with self.transaction() as c:
            has_meta = c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            if not has_meta:
                others = c.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
                if others:
                    raise StoreError(f"{self.path}: an SQLite file, but not an hwnas cost store")
                _run_script(c, _SCHEMA_V1)
                for v in range(1, SCHEMA_VERSION):
                    MIGRATIONS[v](c)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                c.execute("INSERT INTO meta VALUES ('created', ?)", (_now(),))
                return
            version = int(c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this hwnas supports "
                    f"({SCHEMA_VERSION}); upgrade hwnas to read it"
                )
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](c)
                version += 1
                c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rollback on any exception. Nested calls join."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- writes -------------------------------------------------------------------
    def add_device(self, device: Device) -> int:
        fp = device.fingerprint
        with self.transaction() as c:
            row = c.execute("SELECT id FROM devices WHERE fingerprint=?", (fp,)).fetchone()
            if row:
                return int(row[0])
            cur = c.execute(
                "INSERT INTO devices (name, fingerprint, info, created) VALUES (?, ?, ?, ?)",
                (device.name, fp, canonical_json(device.to_dict()), _now()),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def add_primitive(self, prim: Primitive) -> str:
        with self.transaction() as c:
            c.execute(
                "INSERT OR IGNORE INTO primitives (key, op, spec) VALUES (?, ?, ?)",
                (prim.key, prim.op, canonical_json(prim.to_dict())),
            )
        return prim.key

    def add_network(self, net: NetworkSpec, *, space: str | None = None, arch: Any = None) -> str:
        with self.transaction() as c:
            for p in net.nodes:
                self.add_primitive(p)
            c.execute(
                "INSERT OR IGNORE INTO networks (hash, space, arch, spec) VALUES (?, ?, ?, ?)",
                (net.hash, space or net.get_meta("space"), None if arch is None else canonical_json(arch),
                 net.to_json()),
            )
        return net.hash

    def add_measurement(self, device_id: int, m: Measurement) -> int:
        return self.add_measurements(device_id, [m])[0]

    def add_measurements(self, device_id: int, items: Sequence[Measurement]) -> list[int]:
        """Append measurements in one transaction: all land or none does."""
        ids: list[int] = []
        with self.transaction() as c:
            for m in items:
                cur = c.execute(
                    "INSERT INTO measurements (kind, target, network, position, device_id, backend, settings,"
                    " settings_hash, samples, median_ms, mean_ms, std_ms, n, energy_mj, power_w, error, versions,"
                    " source, extra, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (m.kind, m.target, m.network, m.position, device_id, m.backend,
                     canonical_json(dict(m.settings)), settings_hash(m.settings), json.dumps(list(m.samples_ms)),
                     m.median_ms if m.error is None else None, m.mean_ms if m.error is None else None,
                     m.std_ms if m.error is None else None, len(m.samples_ms), m.energy_mj, m.power_w, m.error,
                     canonical_json(dict(m.versions)), m.source, canonical_json(dict(m.extra)), _now()),
                )
                ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
        return ids

    def add_rules(self, device_id: int, backend: str, kind: str, data: Mapping[str, Any],
                  settings: Mapping[str, Any], versions: Mapping[str, Any] | None = None) -> int:
        """Append measured rules (e.g. which operator pairs fuse) for a device and backend."""
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO rules (device_id, backend, kind, settings, data, versions, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (device_id, backend, kind, canonical_json(dict(settings)), canonical_json(dict(data)),
                 canonical_json(dict(versions or {})), _now()))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def rules(self, device_id: int, backend: str, kind: str) -> dict[str, Any] | None:
        """The newest rules of ``kind`` for a device and backend (data, settings, created), or None."""
        row = self.conn.execute(
            "SELECT data, settings, versions, created FROM rules WHERE device_id=? AND backend=? AND kind=?"
            " ORDER BY id DESC LIMIT 1", (device_id, backend, kind)).fetchone()
        if row is None:
            return None
        return {"data": json.loads(row[0]), "settings": json.loads(row[1]), "versions": json.loads(row[2]),
                "created": row[3]}

    # -- reads --------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT d.id, d.name, d.fingerprint, d.info, d.created, count(m.id) AS n FROM devices d"
            " LEFT JOIN measurements m ON m.device_id = d.id GROUP BY d.id ORDER BY d.id"
        ).fetchall()
        return [{"id": r["id"], "name": r["name"], "fingerprint": r["fingerprint"],
                 "info": json.loads(r["info"]), "created": r["created"], "measurements": r["n"]} for r in rows]

    def find_device(self, ref: str | int) -> dict[str, Any]:
        """A device by id, fingerprint (prefix) or name; ambiguity is an error."""
        devs = self.devices()
        sref = str(ref)
        hits = [d for d in devs if str(d["id"]) == sref or d["fingerprint"].startswith(sref)] or \
               [d for d in devs if d["name"] == sref]
        if not hits:
            names = ", ".join(f"{d['name']} (id {d['id']}, {d['fingerprint']})" for d in devs) or "none"
            raise StoreError(f"{self.path}: no device {ref!r}; devices: {names}")
        if len(hits) > 1:
            names = ", ".join(f"id {d['id']} {d['fingerprint']}" for d in hits)
            raise StoreError(f"{self.path}: device {ref!r} is ambiguous ({names}); give the id or fingerprint")
        return hits[0]

    def primitive(self, key: str) -> Primitive:
        row = self.conn.execute("SELECT spec FROM primitives WHERE key=?", (key,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no primitive {key!r}")
        return Primitive.from_dict(json.loads(row[0]))

    def network(self, net_hash: str) -> NetworkSpec:
        row = self.conn.execute("SELECT spec FROM networks WHERE hash=?", (net_hash,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no network {net_hash!r}")
        return NetworkSpec.from_json(row[0])

    def networks(self, space: str | None = None) -> list[tuple[NetworkSpec, Any]]:
        q = "SELECT spec, arch FROM networks" + (" WHERE space=?" if space else "") + " ORDER BY rowid"
        rows = self.conn.execute(q, (space,) if space else ()).fetchall()
        return [(NetworkSpec.from_json(r[0]), json.loads(r[1]) if r[1] else None) for r in rows]

    def measured(self, device_id: int, backend: str, settings: Mapping[str, Any], kind: str,
                 *, include_failed: bool = True) -> set[str]:
        """Targets already measured for this device, backend and settings (resume)."""
        q = ("SELECT DISTINCT target FROM measurements WHERE device_id=? AND backend=? AND settings_hash=?"
             " AND kind=?" + ("" if include_failed else " AND error IS NULL"))
        rows = self.conn.execute(q, (device_id, backend, settings_hash(settings), kind)).fetchall()
        return {r[0] for r in rows}

    def measured_blocks(self, device_id: int, backend: str, settings: Mapping[str, Any]) -> set[str]:
        """Networks whose block-by-block measurement is complete for these settings."""
        rows = self.conn.execute(
            "SELECT DISTINCT network FROM measurements WHERE device_id=? AND backend=? AND settings_hash=?"
            " AND kind='block'", (device_id, backend, settings_hash(settings))).fetchall()
        return {r[0] for r in rows}

    def query(self, *, device_id: int | None = None, backend: str | None = None, kind: str | None = None,
              target: str | None = None, network: str | None = None, ok_only: bool = False,
              latest: bool = False) -> list[dict[str, Any]]:
        """Measurement rows as dicts, oldest first; ``latest`` keeps the newest per
        (kind, target, network, position, device, backend, settings)."""
        cond, args = [], []
        for col, val in (("m.device_id", device_id), ("m.backend", backend), ("m.kind", kind),
                         ("m.target", target), ("m.network", network)):
            if val is not None:
                cond.append(f"{col}=?")
                args.append(val)
        if ok_only:
            cond.append("m.error IS NULL")
        where = (" WHERE " + " AND ".join(cond)) if cond else ""
        rows = self.conn.execute(
            "SELECT m.*, d.name AS device_name, d.fingerprint AS device_fp FROM measurements m"
            " JOIN devices d ON d.id = m.device_id" + where + " ORDER BY m.id", args).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["samples"] = json.loads(d["samples"])
            d["settings"] = json.loads(d["settings"])
            d["versions"] = json.loads(d["versions"])
            d["extra"] = json.loads(d["extra"]) if d["extra"] else {}
            out.append(d)
        if latest:
            newest: dict[tuple, dict[str, Any]] = {}
            for d in out:
                newest[(d["kind"], d["target"], d["network"], d["position"], d["device_id"], d["backend"],
                        d["settings_hash"])] = d
            out = sorted(newest.values(), key=lambda d: d["id"])
        return out

    def table(self, device_id: int, backend: str, *, metric: str = "median_ms",
              settings: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Primitive key -> value (newest successful measurement) for one device and backend.

        ``metric`` is ``median_ms``, ``mean_ms`` or ``energy_mj``. With several settings
        stored, pass ``settings`` to choose; otherwise mixing them is refused.
        """
        if metric not in ("median_ms", "mean_ms", "energy_mj", "power_w"):
            raise StoreError(f"table metric must be median_ms, mean_ms, energy_mj or power_w, got {metric!r}")
        rows = self.query(device_id=device_id, backend=backend, kind="primitive", ok_only=True, latest=True)
        if settings is not None:
            sh = settings_hash(settings)
            rows = [r for r in rows if r["settings_hash"] == sh]
        elif len({r["settings_hash"] for r in rows}) > 1:
            raise StoreError(
                f"{self.path}: device {device_id} / {backend} has primitives measured under several settings;"
                " choose one (settings=...)")
        return {r["target"]: float(r[metric]) for r in rows if r[metric] is not None}

    def summary(self) -> dict[str, Any]:
        c = self.conn
        by = c.execute(
            "SELECT d.name, d.fingerprint, m.backend, m.kind, count(*), sum(m.error IS NOT NULL)"
            " FROM measurements m JOIN devices d ON d.id=m.device_id GROUP BY m.device_id, m.backend, m.kind"
            " ORDER BY m.device_id, m.backend, m.kind").fetchall()
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "devices": c.execute("SELECT count(*) FROM devices").fetchone()[0],
            "primitives": c.execute("SELECT count(*) FROM primitives").fetchone()[0],
            "networks": c.execute("SELECT count(*) FROM networks").fetchone()[0],
            "measurements": c.execute("SELECT count(*) FROM measurements").fetchone()[0],
            "failed": c.execute("SELECT count(*) FROM measurements WHERE error IS NOT NULL").fetchone()[0],
            "groups": [{"device": r[0], "fingerprint": r[1], "backend": r[2], "kind": r[3], "count": r[4],
                        "failed": r[5]} for r in by],
        }

    # -- export -------------------------------------------------------------------
    EXPORT_COLUMNS = ("id", "kind", "target", "network", "position", "device_name", "device_fp", "backend",
                      "settings", "n", "median_ms", "mean_ms", "std_ms", "energy_mj", "power_w", "error",
                      "source", "created", "samples")

    def export_rows(self, **filters: Any) -> list[dict[str, Any]]:
        rows = self.query(**filters)
        out = []
        for r in rows:
            out.append({k: (canonical_json(r[k]) if isinstance(r[k], (dict, list)) else r[k])
                        for k in self.EXPORT_COLUMNS})
        return out

    def export_csv(self, dest: str | Path | Any, **filters: Any) -> int:
        rows = self.export_rows(**filters)
        fh = open(dest, "w", newline="") if isinstance(dest, (str, Path)) else dest
        try:
            w = csv.DictWriter(fh, fieldnames=list(self.EXPORT_COLUMNS))
            w.writeheader()
            w.writerows(rows)
        finally:
            if isinstance(dest, (str, Path)):
                fh.close()
        return len(rows)

    def to_dataframe(self, **filters: Any) -> Any:
        import pandas as pd

        return pd.DataFrame(self.query(**filters))


def open_store(path: str | Path, *, create: bool = True) -> Store:
    return Store(path, create=create)


def iter_chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for it in items:
        buf.append(it)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
