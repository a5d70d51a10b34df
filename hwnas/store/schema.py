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

SCHEMA_VERSION = 1

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

#: Migrations: MIGRATIONS[v] upgrades a store from version v to v+1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def init_schema(c: sqlite3.Connection, path: Path) -> None:
    """Create the tables in an empty file, or migrate an older store (inside a transaction)."""
    has_meta = c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if not has_meta:
        others = c.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        if others:
            raise StoreError(f"{path}: an SQLite file, but not an hwnas cost store")
        for stmt in _SCHEMA_V1.split(";"):
            if stmt.strip():
                c.execute(stmt)
        c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        c.execute("INSERT INTO meta VALUES ('created', ?)", (now(),))
        return
    version = int(c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this hwnas supports "
                         f"({SCHEMA_VERSION}); upgrade hwnas to read it")
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](c)
        version += 1
        c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
