"""The cost store: one SQLite file holding devices, primitives, networks and measurements.

Why SQLite: embedded, one file, real SQL, and atomic transactions, so a profiling job
killed at any moment loses at most the item in flight. The store is append-only:
measurements are never updated in place; a rerun adds rows and readers take the
newest. WAL mode plus a busy timeout lets two processes write at once.
"""
from __future__ import annotations

import csv
import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from hwnas.errors import StoreError
from hwnas.inputs import output_file
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.store.records import Device, Measurement, canonical_json, now, settings_hash
from hwnas.store.schema import init_schema

DEFAULT_STORE = "hwnas-store.sqlite"


class Store:
    """A cost store on disk. Use as a context manager or call :meth:`close`.

    ``Store(path)`` creates the file if missing; ``Store(path, create=False)`` refuses
    a missing file with a one-line message (read-only commands use that).
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, *, create: bool = True, timeout: float = 60.0) -> None:
        if str(path).startswith("asset:"):
            if create:
                raise StoreError(f"{path}: shipped assets are read-only; write to a store file of your own")
            from hwnas.assets import resolve

            path = resolve(str(path), "store")
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

    def _init_schema(self) -> None:
        with self.transaction() as c:
            init_schema(c, self.path)

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
                (device.name, fp, canonical_json(device.to_dict()), now()),
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
                     canonical_json(dict(m.versions)), m.source, canonical_json(dict(m.extra)), now()),
                )
                ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
        return ids

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
        if isinstance(dest, (str, Path)):
            output_file(dest, "CSV file")
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
