"""The cost store: one SQLite file holding devices, primitives, networks and measurements.

Why SQLite: embedded, one file, real SQL, and atomic transactions, so a profiling job
killed at any moment loses at most the item in flight. The store is append-only:
measurements are never updated in place; a rerun adds rows and readers take the
newest. WAL mode plus a busy timeout lets two processes write at once.

Commands that only read (``store ls/show/export``, ``fit-cost``, the store source of the
hardware objective) open the file read-only (``mode=ro``): they never create, migrate or
switch a file to WAL, so a wrong path cannot damage a foreign SQLite file or an empty one.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from hwnas.errors import HwnasError, StoreError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.store.export import Exports
from hwnas.store.records import Device, Measurement, canonical_json, now, settings_hash
from hwnas.store.rows import decode_json, decode_measurement
from hwnas.store.schema import SCHEMA_VERSION, check_readable, init_schema, tables

DEFAULT_STORE = "hwnas-store.sqlite"

class Store(Exports):
    """A cost store on disk. Use as a context manager or call :meth:`close`.

    ``Store(path)`` creates the file if missing; ``Store(path, create=False)`` refuses
    a missing file with a one-line message; ``Store(path, readonly=True)`` opens an
    existing store without ever writing to it (every read-only command uses that).
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, *, create: bool = True, readonly: bool = False,
                 timeout: float = 60.0) -> None:
        if str(path).startswith("asset:"):  # resolved where it was read (hwnas.assets.resolve_path), never here
            raise StoreError(f"{path}: shipped assets are read-only and opened by their path "
                             "(hwnas.assets.resolve_path); write to a store file of your own")
        self.path = Path(path)
        self.readonly = readonly
        memory = str(path) == ":memory:"
        if not memory and self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path}: not a file (a cost store is one SQLite file)")
        if not memory and not self.path.exists():
            if not create or readonly:
                raise StoreError(f"no cost store at {self.path} (create one with `hwnas profile` or `hwnas ingest`)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if readonly:
            self._open_readonly(timeout)
        else:
            self._open_writable(str(path), timeout)

    def _open_readonly(self, timeout: float) -> None:
        if self.path.stat().st_size == 0:
            raise StoreError(f"{self.path}: an empty file, not an hwnas cost store")
        try:
            self.conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout,
                                        isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a readable hwnas cost store ({exc})") from None
        self.conn.row_factory = sqlite3.Row
        try:
            self.version = check_readable(self.conn, self.path)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"{self.path}: not a readable hwnas cost store ({exc})") from None
        except BaseException:
            self.conn.close()
            raise

    def _open_writable(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connect(path, timeout)
                return
            except sqlite3.OperationalError as exc:
                self._close_quietly()
                # Switching to WAL can report "locked" without waiting when another
                # process is creating the same file; retry until the timeout.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise StoreError(f"{self.path}: not a readable hwnas cost store ({exc})") from None
            except sqlite3.DatabaseError as exc:
                self._close_quietly()
                raise StoreError(f"{self.path}: not a readable hwnas cost store ({exc})") from None
            except BaseException:
                self._close_quietly()
                raise

    def _close_quietly(self) -> None:
        conn = self.__dict__.pop("conn", None)
        if conn is not None:
            conn.close()

    def _connect(self, path: str, timeout: float) -> None:
        self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        if tables(self.conn):
            check_readable(self.conn, self.path)  # refuse a foreign or damaged file before touching it
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as c:
            init_schema(c, self.path)
        self.version = SCHEMA_VERSION

    @property
    def schema_version(self) -> int:
        return self.version

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rollback on any exception. Nested calls join."""
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only; this command does not write")
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

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read; a damaged store is one line naming the file, not a traceback."""
        try:
            return self.conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: damaged cost store ({exc})") from None

    def _json(self, text: Any, what: str, expect: type = dict) -> Any:
        return decode_json(self.path, text, what, expect)

    # -- writes -------------------------------------------------------------------
    def add_device(self, device: Device, *, created: float | None = None) -> int:
        """The id of ``device``, added if new. ``created`` keeps the time it was first seen
        when a store is rebuilt from a dump (a shipped store asset); default: now."""
        fp = device.fingerprint
        with self.transaction() as c:
            row = c.execute("SELECT id FROM devices WHERE fingerprint=?", (fp,)).fetchone()
            if row:
                return int(row[0])
            cur = c.execute(
                "INSERT INTO devices (name, fingerprint, info, created) VALUES (?, ?, ?, ?)",
                (device.name, fp, canonical_json(device.to_dict()), now() if created is None else created),
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

    def add_measurement(self, device_id: int, m: Measurement, *, created: float | None = None) -> int:
        return self.add_measurements(device_id, [m], created=created)[0]

    def add_measurements(self, device_id: int, items: Sequence[Measurement], *, created: float | None = None) -> list[int]:
        """Append measurements in one transaction: all land or none does. ``created`` keeps
        when they were measured when a store is rebuilt from a dump; default: now."""
        ids: list[int] = []
        with self.transaction() as c:
            for m in items:
                ok = m.error is None
                cur = c.execute(
                    "INSERT INTO measurements (kind, target, network, position, device_id, backend, settings,"
                    " settings_hash, samples, median_ms, mean_ms, std_ms, n, energy_mj, power_w, error, versions,"
                    " source, extra, created, latency_ms, flagged, evidence)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (m.kind, m.target, m.network, m.position, device_id, m.backend,
                     canonical_json(dict(m.settings)), settings_hash(m.settings), json.dumps(list(m.samples_ms)),
                     m.median_ms if ok else None, m.mean_ms if ok else None, m.std_ms if ok else None,
                     len(m.samples_ms), m.energy_mj, m.power_w, m.error, canonical_json(dict(m.versions)), m.source,
                     canonical_json(dict(m.extra)), now() if created is None else created, m.latency_ms,
                     None if m.flagged is None else int(bool(m.flagged)),
                     canonical_json(dict(m.evidence)) if m.evidence else None),
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
                 canonical_json(dict(versions or {})), now()))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def rules(self, device_id: int, backend: str, kind: str) -> dict[str, Any] | None:
        """The newest rules of ``kind`` for a device and backend (data, settings, versions,
        created), or None — also for a store opened read-only at a version before rules."""
        if "rules" not in tables(self.conn):
            return None
        rows = self._read("SELECT data, settings, versions, created FROM rules WHERE device_id=? AND backend=? AND "
                          "kind=? ORDER BY id DESC LIMIT 1", (device_id, backend, kind))
        if not rows:
            return None
        r = rows[0]
        return {"data": json.loads(r["data"]), "settings": json.loads(r["settings"]),
                "versions": json.loads(r["versions"]), "created": r["created"]}

    # -- reads --------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT d.id, d.name, d.fingerprint, d.info, d.created, count(m.id) AS n FROM devices d"
            " LEFT JOIN measurements m ON m.device_id = d.id GROUP BY d.id ORDER BY d.id")
        return [{"id": r["id"], "name": r["name"], "fingerprint": str(r["fingerprint"]),
                 "info": self._json(r["info"], f"device {r['id']} info"), "created": r["created"],
                 "measurements": r["n"]} for r in rows]

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
        rows = self._read("SELECT spec FROM primitives WHERE key=?", (key,))
        if not rows:
            raise StoreError(f"{self.path}: no primitive {key!r}")
        try:
            return Primitive.from_dict(self._json(rows[0][0], f"primitive {key!r}"))
        except HwnasError as exc:
            raise StoreError(f"{self.path}: primitive {key!r}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise StoreError(f"{self.path}: primitive {key!r}: damaged spec ({exc!r:.80})") from None

    def network(self, net_hash: str) -> NetworkSpec:
        rows = self._read("SELECT spec FROM networks WHERE hash=?", (net_hash,))
        if not rows:
            raise StoreError(f"{self.path}: no network {net_hash!r}")
        return self._network(rows[0][0], net_hash)

    def _network(self, text: Any, what: str) -> NetworkSpec:
        try:
            return NetworkSpec.from_dict(self._json(text, f"network {what}"))
        except HwnasError as exc:
            raise StoreError(f"{self.path}: network {what}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise StoreError(f"{self.path}: network {what}: damaged spec ({exc!r:.80})") from None

    def networks(self, space: str | None = None) -> list[tuple[NetworkSpec, Any]]:
        q = "SELECT hash, spec, arch FROM networks" + (" WHERE space=?" if space else "") + " ORDER BY rowid"
        rows = self._read(q, (space,) if space else ())
        return [(self._network(r[1], r[0]), self._json(r[2], f"network {r[0]} arch", object) if r[2] else None)
                for r in rows]

    def max_id(self) -> int:
        """The newest measurement id (a job's watermark: rows above it are its own run's)."""
        return int(self._read("SELECT coalesce(max(id), 0) FROM measurements")[0][0])

    def measured(self, device_id: int, backend: str, settings: Mapping[str, Any], kind: str,
                 *, include_failed: bool = True) -> set[str]:
        """Targets measured for this device, backend and settings; without
        ``include_failed`` only those whose newest row succeeded."""
        rows = self._read(
            "SELECT target, error IS NULL FROM measurements WHERE id IN (SELECT max(id) FROM measurements"
            " WHERE device_id=? AND backend=? AND settings_hash=? AND kind=? GROUP BY target)",
            (device_id, backend, settings_hash(settings), kind))
        return {str(r[0]) for r in rows if r[1] or include_failed}

    def measured_blocks(self, device_id: int, backend: str, settings: Mapping[str, Any]) -> set[str]:
        """Networks with block-by-block rows for these settings (a network's rows are
        written in one transaction, so any block means all of them)."""
        rows = self._read("SELECT DISTINCT network FROM measurements WHERE device_id=? AND backend=? AND "
                          "settings_hash=? AND kind='block'", (device_id, backend, settings_hash(settings)))
        return {str(r[0]) for r in rows}

    def query(self, *, device_id: int | None = None, backend: str | None = None, kind: str | None = None,
              target: str | None = None, network: str | None = None, ok_only: bool = False,
              latest: bool = False, exclude_flagged: bool = False) -> list[dict[str, Any]]:
        """Measurement rows as dicts, oldest first; ``latest`` keeps the newest per
        (kind, target, network, position, device, backend, settings) among the rows the
        other filters keep (so excluding flagged rows falls back to an older clean one)."""
        cond, args = [], []
        for col, val in (("m.device_id", device_id), ("m.backend", backend), ("m.kind", kind),
                         ("m.target", target), ("m.network", network)):
            if val is not None:
                cond.append(f"{col}=?")
                args.append(val)
        if ok_only:
            cond.append("m.error IS NULL")
        if exclude_flagged and self.version >= 3:
            cond.append("(m.flagged IS NULL OR m.flagged = 0)")
        where = (" WHERE " + " AND ".join(cond)) if cond else ""
        rows = self._read("SELECT m.*, d.name AS device_name, d.fingerprint AS device_fp FROM measurements m"
                          " JOIN devices d ON d.id = m.device_id" + where + " ORDER BY m.id", args)
        out = [decode_measurement(self.path, r) for r in rows]
        if latest:
            newest: dict[tuple, dict[str, Any]] = {}
            for d in out:
                newest[(d["kind"], d["target"], d["network"], d["position"], d["device_id"], d["backend"],
                        d["settings_hash"])] = d
            out = sorted(newest.values(), key=lambda d: d["id"])
        return out

    def table(self, device_id: int, backend: str, *, metric: str = "latency_ms",
              settings: Mapping[str, Any] | None = None, exclude_flagged: bool = False) -> dict[str, float]:
        """Primitive key -> value (newest successful measurement) for one device and backend.

        ``metric`` is ``latency_ms`` (the protocol's robust estimate; the median for older
        rows), ``median_ms``, ``mean_ms``, ``energy_mj`` or ``power_w``. With several
        settings stored, pass ``settings`` to choose; otherwise mixing them is refused.
        """
        if metric not in TABLE_METRICS:
            raise StoreError(f"table metric must be one of {', '.join(TABLE_METRICS)}, got {metric!r}")
        rows = self.query(device_id=device_id, backend=backend, kind="primitive", ok_only=True, latest=True,
                          exclude_flagged=exclude_flagged)
        if settings is not None:
            sh = settings_hash(settings)
            rows = [r for r in rows if r["settings_hash"] == sh]
        elif len({r["settings_hash"] for r in rows}) > 1:
            raise StoreError(
                f"{self.path}: device {device_id} / {backend} has primitives measured under several settings;"
                " choose one (settings=...)")
        return {r["target"]: float(r[metric]) for r in rows if r[metric] is not None}

    def summary(self) -> dict[str, Any]:
        flagged = "sum(m.flagged = 1)" if self.version >= 3 else "0"
        by = self._read(
            f"SELECT d.name, d.fingerprint, m.backend, m.kind, count(*), sum(m.error IS NOT NULL), {flagged}"
            " FROM measurements m JOIN devices d ON d.id=m.device_id GROUP BY m.device_id, m.backend, m.kind"
            " ORDER BY m.device_id, m.backend, m.kind")

        def count(sql: str) -> int:
            return int(self._read(sql)[0][0] or 0)

        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "devices": count("SELECT count(*) FROM devices"),
            "primitives": count("SELECT count(*) FROM primitives"),
            "networks": count("SELECT count(*) FROM networks"),
            "measurements": count("SELECT count(*) FROM measurements"),
            "failed": count("SELECT count(*) FROM measurements WHERE error IS NOT NULL"),
            "flagged": count("SELECT count(*) FROM measurements WHERE flagged = 1") if self.version >= 3 else 0,
            "groups": [{"device": r[0], "fingerprint": r[1], "backend": r[2], "kind": r[3], "count": r[4],
                        "failed": r[5], "flagged": r[6] or 0} for r in by],
        }


#: What :meth:`Store.table` can tabulate.
TABLE_METRICS = ("latency_ms", "median_ms", "mean_ms", "energy_mj", "power_w")
