"""The cost store's SQL schema, its version and the migrations between versions.

Why versioned: stores outlive hwnas releases (a table measured on a board months ago
must stay readable), so every change of the schema is a numbered migration applied on
open, and a store newer than this hwnas is refused instead of misread.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from hwnas.errors import StoreError
from hwnas.store.records import now

SCHEMA_VERSION = 3

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

# v1 -> v2: concurrent profilers on one store claim an item before measuring it, so no
# item is measured twice; a claim names its owner (host, pid, a per-job token) and
# expires, so the claims of a dead profiler are taken over.
_V2_CLAIMS = """
CREATE TABLE claims (
    device_id INTEGER NOT NULL,
    backend TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- 'primitive' or 'network' (a network item includes its blocks)
    target TEXT NOT NULL,
    owner TEXT NOT NULL,                 -- unique per profiling job
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL,                        -- the owner's process start time (guards against pid reuse)
    expires REAL NOT NULL,               -- unix time; a live owner renews before every request
    PRIMARY KEY (device_id, backend, settings_hash, kind, target)
)
"""

# v2 -> v3: the evidence of how a measurement was taken (CPU vs wall time per repeat,
# load and steal before/after, outliers), whether it is flagged as disturbed, and the
# robust latency estimate the cost models use (median_ms stays the plain median).
_V3_EVIDENCE = (
    "ALTER TABLE measurements ADD COLUMN latency_ms REAL",
    "ALTER TABLE measurements ADD COLUMN flagged INTEGER",
    "ALTER TABLE measurements ADD COLUMN evidence TEXT",
)

#: Tables every readable store has (checked when a store is opened read-only).
REQUIRED_TABLES = ("meta", "devices", "primitives", "networks", "measurements")


def _to_v2(c: sqlite3.Connection) -> None:
    c.execute(_V2_CLAIMS)


def _to_v3(c: sqlite3.Connection) -> None:
    for stmt in _V3_EVIDENCE:
        c.execute(stmt)


#: Migrations: MIGRATIONS[v] upgrades a store from version v to v+1. A new store is
#: created at v1 and migrated, so every migration runs on every new store.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _to_v2, 2: _to_v3}


def tables(c: sqlite3.Connection) -> set[str]:
    return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def read_version(c: sqlite3.Connection, path: Path) -> int:
    """The store's schema version; a damaged meta table is one line, not a traceback."""
    try:
        row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: damaged meta table ({exc})") from None
    try:
        version = int(row[0]) if row is not None else None
    except (TypeError, ValueError):
        version = None
    if version is None or version < 1:
        shown = "missing" if row is None else repr(str(row[0])[:40])
        raise StoreError(f"{path}: damaged meta table (schema_version is {shown}, expected an integer >= 1)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this hwnas supports "
                         f"({SCHEMA_VERSION}); upgrade hwnas to read it")
    return version


def check_readable(c: sqlite3.Connection, path: Path) -> int:
    """Validate a store without writing to it: an hwnas store with every table, of a
    version this hwnas reads. Returns the version."""
    have = tables(c)
    if not have:
        raise StoreError(f"{path}: an empty database, not an hwnas cost store")
    if "meta" not in have:
        raise StoreError(f"{path}: an SQLite file, but not an hwnas cost store (no meta table)")
    version = read_version(c, path)
    missing = [t for t in REQUIRED_TABLES if t not in have]
    if missing:
        raise StoreError(f"{path}: damaged cost store (missing table {', '.join(missing)})")
    return version


def init_schema(c: sqlite3.Connection, path: Path) -> None:
    """Create the tables in an empty file, or migrate an older store (inside a transaction)."""
    if not tables(c):
        for stmt in _SCHEMA_V1.split(";"):
            if stmt.strip():
                c.execute(stmt)
        c.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        c.execute("INSERT INTO meta VALUES ('created', ?)", (now(),))
    version = check_readable(c, path)
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](c)
        version += 1
        c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
