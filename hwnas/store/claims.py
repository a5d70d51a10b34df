"""Claims: which profiler is measuring which item, so concurrent jobs on one store never
measure an item twice.

Why leases and not locks: profilers are separate processes (maybe on separate hosts
sharing a file system) and any of them can be SIGKILLed. A claim is a row naming its
owner (a per-job token, the host, the pid and the pid's start time) with an expiry; a
live owner renews it before every request it sends to its measuring worker (each
request is bounded by its timeout), so a live owner's claim never lapses, while a dead
owner's claim is taken over as soon as it expires — or at once when the owner ran on
this host and its process is gone. Claiming re-checks, inside the same transaction,
whether the item was measured meanwhile, and the rows are written and the claim
dropped in one transaction, so two jobs can never both store the same item.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hwnas.store.db import Store
from hwnas.store.records import Measurement

log = logging.getLogger(__name__)

CLAIMED, DONE, BUSY = "claimed", "done", "busy"


def process_started(pid: int) -> float | None:
    """Start time of a process (clock ticks since boot, from /proc); None where unreadable.
    Together with the pid it names a process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return float(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Owner:
    """Who holds a claim: one per profiling job."""

    token: str
    host: str
    pid: int
    started: float | None

    @classmethod
    def me(cls) -> "Owner":
        pid = os.getpid()
        host = socket.gethostname()
        return cls(f"{host}:{pid}:{uuid.uuid4().hex[:12]}", host, pid, process_started(pid))


def owner_alive(host: str, pid: int, started: float | None) -> bool | None:
    """False when the owner ran on this host and its process is gone (or the pid now
    names another process); None when it cannot be known (another host): then only the
    expiry decides."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now_started = process_started(pid)
    if started is not None and now_started is not None and now_started != started:
        return False
    return True


@dataclass(frozen=True)
class ItemKey:
    """One item of a profiling job: a primitive, or a network with its blocks."""

    device_id: int
    backend: str
    settings_hash: str
    kind: str  # 'primitive' | 'network'
    target: str

    def args(self) -> tuple[Any, ...]:
        return (self.device_id, self.backend, self.settings_hash, self.kind, self.target)


_WHERE = "device_id=? AND backend=? AND settings_hash=? AND kind=? AND target=?"


def item_done(store: Store, key: ItemKey, *, retry_failed: bool = False, retry_flagged: bool = False,
              since_id: int = 0) -> bool:
    """Whether ``key`` needs no measuring: it has rows, and its newest rows (for a network:
    the network's and every block's) are neither a failure being retried nor flagged
    while flagged rows are retried — or this job already wrote it (rows above ``since_id``)."""
    row = store.conn.execute(f"SELECT id, error IS NOT NULL, coalesce(flagged, 0) FROM measurements WHERE {_WHERE}"
                             " ORDER BY id DESC LIMIT 1", key.args()).fetchone()
    if row is None:
        return False
    newest_id, failed, flagged = int(row[0]), bool(row[1]), bool(row[2])
    if key.kind == "network":
        blocks = store.conn.execute(
            "SELECT count(*), coalesce(max(failed), 0), coalesce(max(flagged), 0) FROM (SELECT error IS NOT NULL AS"
            " failed, coalesce(flagged, 0) AS flagged FROM measurements WHERE id IN (SELECT max(id) FROM measurements"
            " WHERE device_id=? AND backend=? AND settings_hash=? AND kind='block' AND network=? GROUP BY position))",
            (key.device_id, key.backend, key.settings_hash, key.target)).fetchone()
        if not blocks[0]:
            return False  # network rows without blocks (e.g. ingested): measure the blocks too
        failed, flagged = failed or bool(blocks[1]), flagged or bool(blocks[2])
    redo = (failed and retry_failed) or (flagged and retry_flagged)
    return not redo or newest_id > since_id


def item_stored(store: Store, key: ItemKey, *, ok: bool = False, blocks: bool = False) -> bool:
    """Whether ``key`` has rows for its settings — with ``ok``, whether its newest row
    succeeded; with ``blocks``, only if block rows of the network exist too. (The kernel
    and model jobs' notion of done; the space job's is :func:`item_done`.)"""
    row = store.conn.execute(f"SELECT error IS NULL FROM measurements WHERE {_WHERE} ORDER BY id DESC LIMIT 1",
                             key.args()).fetchone()
    if row is None or (ok and not row[0]):
        return False
    if not blocks:
        return True
    return store.conn.execute("SELECT 1 FROM measurements WHERE device_id=? AND backend=? AND settings_hash=? AND "
                              "kind='block' AND network=? LIMIT 1",
                              (key.device_id, key.backend, key.settings_hash, key.target)).fetchone() is not None


class Claims:
    """This job's side of the claims table of one store."""

    def __init__(self, store: Store, owner: Owner | None = None) -> None:
        self.store = store
        self.owner = owner or Owner.me()
        self.held: set[ItemKey] = set()

    def claim(self, key: ItemKey, ttl_s: float, done: Callable[[], bool]) -> str:
        """CLAIMED (now ours), DONE (measured meanwhile) or BUSY (a live owner has it)."""
        o = self.owner
        with self.store.transaction() as c:
            if done():
                return DONE
            row = c.execute(f"SELECT owner, host, pid, started, expires FROM claims WHERE {_WHERE}",
                            key.args()).fetchone()
            if row is not None and row[0] != o.token:
                expired = float(row[4]) < time.time()
                if not expired and owner_alive(row[1], int(row[2]), row[3]) is not False:
                    return BUSY
                log.info("taking over %s %s from %s (%s)", key.kind, key.target, row[0],
                         "claim expired" if expired else "owner is gone")
            c.execute("INSERT OR REPLACE INTO claims (device_id, backend, settings_hash, kind, target, owner, host,"
                      " pid, started, expires) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (*key.args(), o.token, o.host, o.pid, o.started, time.time() + ttl_s))
        self.held.add(key)
        return CLAIMED

    def renew(self, key: ItemKey, ttl_s: float) -> bool:
        """Extend our claim; False if it was taken over (we stalled past its expiry)."""
        with self.store.transaction() as c:
            cur = c.execute(f"UPDATE claims SET expires=? WHERE {_WHERE} AND owner=?",
                            (time.time() + ttl_s, *key.args(), self.owner.token))
        if cur.rowcount != 1:
            self.held.discard(key)
            return False
        return True

    def commit(self, key: ItemKey, items: Sequence[Measurement]) -> list[int] | None:
        """Store an item's rows and drop its claim in one transaction; None (nothing
        stored) if the claim was taken over meanwhile — its new owner measures it."""
        with self.store.transaction() as c:
            row = c.execute(f"SELECT owner FROM claims WHERE {_WHERE}", key.args()).fetchone()
            if row is None or row[0] != self.owner.token:
                self.held.discard(key)
                log.warning("lost the claim on %s %s; not storing it twice", key.kind, key.target)
                return None
            ids = self.store.add_measurements(key.device_id, items)
            c.execute(f"DELETE FROM claims WHERE {_WHERE}", key.args())
        self.held.discard(key)
        return ids

    def release(self, key: ItemKey) -> None:
        """Drop our claim on ``key`` without storing anything (a no-op if it is not ours)."""
        with self.store.transaction() as c:
            c.execute(f"DELETE FROM claims WHERE {_WHERE} AND owner=?", (*key.args(), self.owner.token))
        self.held.discard(key)

    def release_all(self) -> None:
        """Drop every claim this job holds (end of job, Ctrl-C); never raises."""
        try:
            with self.store.transaction() as c:
                c.execute("DELETE FROM claims WHERE owner=?", (self.owner.token,))
        except Exception as exc:  # the claims expire anyway
            log.debug("could not release claims: %s", exc)
        self.held.clear()
