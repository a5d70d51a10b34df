"""The cost store (SQLite): records in :mod:`.records`, schema and migrations in
:mod:`.schema`, the database in :mod:`.db`.

Floor: records, above only the core utilities and :mod:`hwnas.errors`. A store is opened by
its path: a shipped ``asset:NAME`` store is resolved to a private copy by the caller
(:func:`hwnas.assets.resolve_path`), never here."""
from __future__ import annotations

from hwnas.store.db import DEFAULT_STORE, Store
from hwnas.store.records import KINDS, Device, Measurement, canonical_json, settings_hash
from hwnas.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["DEFAULT_STORE", "KINDS", "MIGRATIONS", "SCHEMA_VERSION", "Device", "Measurement", "Store",
           "canonical_json", "settings_hash"]
