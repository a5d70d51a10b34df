"""The lease-taking skeleton every profiling job runs on: claim an item, measure it,
write it, release it; skip what is measured; resumable.

Why one skeleton: a space job, the kernel job, a model job and the Ray farm's driver
may all write one store at once (two terminals, a farm and a laptop). If each decided on
its own what to skip and when to write, two of them could measure one item twice, and
each would get resume subtly different. Here there is one protocol, on the claims table
of the store (:mod:`hwnas.store.claims`):

1. ``take`` claims the next item that is not done (the job's ``done`` predicate is
   re-checked inside the claim's transaction), for ``ttl_s`` seconds; an item a live
   job holds is looked at again later (``BUSY``), one measured meanwhile is skipped;
2. the holder ``renew``s before every request it sends (a local job before each worker
   request, the farm's driver for all tasks in flight while it waits), so a live
   holder's lease never lapses and a stalled one is taken over;
3. ``commit`` writes the item's rows and drops the lease in one transaction, and
   stores nothing if the lease was lost meanwhile (its new holder measures it);
4. ``close`` drops every lease still held (end of job, Ctrl-C, a crash path); a killed
   job's leases expire, or are taken over at once on the same host.
"""
from __future__ import annotations

import collections
import collections.abc
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from hwnas.profilers.client import STARTUP_TIMEOUT_S
from hwnas.store import Measurement, Store
from hwnas.store.claims import BUSY, CLAIMED, Claims, ItemKey, Owner, item_done

log = logging.getLogger(__name__)

__all__ = ["BUSY_POLL_S", "LEASE_GRACE_S", "JobItem", "LeasedItems", "LostLease", "resumable"]

#: Seconds a lease outlives the request it covers (restarting a crashed worker included).
LEASE_GRACE_S = STARTUP_TIMEOUT_S + 30.0
#: How often a job looks again at items another live job is measuring.
BUSY_POLL_S = 0.2

Done = Callable[[ItemKey], bool]


@dataclass(frozen=True)
class JobItem:
    """One unit of a job: its store key, what to measure, and how long its first lease lasts."""

    key: ItemKey
    obj: Any
    ttl_s: float


class LostLease(Exception):
    """Our lease was taken over while we measured (we stalled past its expiry)."""


def resumable(store: Store, *, retry_failed: bool = False, retry_flagged: bool = False) -> Done:
    """The space job's notion of done: the item has rows for these settings, except a
    failure / flagged row when those are retried — unless this job wrote it (rows newer
    than now)."""
    since_id = store.max_id()
    return lambda key: item_done(store, key, retry_failed=retry_failed, retry_flagged=retry_flagged,
                                 since_id=since_id)


class LeasedItems:
    """A job's items, handed out one lease at a time (see the module docstring).

    ``items`` may be lazy (the kernel job draws its networks as it goes). ``deadline`` is
    a :func:`time.monotonic` time after which no further item is taken; the items not
    taken are counted in ``left``. ``elsewhere`` counts items another job measured.
    ``pause`` is called when every remaining item is held by a live job (default: a
    short sleep), before they are looked at again.
    """

    def __init__(self, store: Store, items: Iterable[JobItem], done: Done, *, deadline: float | None = None,
                 owner: Owner | None = None, pause: Callable[[], None] | None = None) -> None:
        self.claims = Claims(store, owner)
        self.done = done
        self.deadline = deadline
        self.pause = pause or (lambda: time.sleep(BUSY_POLL_S))
        self._source: Iterator[JobItem] = iter(items)
        self._unseen = len(items) if isinstance(items, collections.abc.Sized) else None
        self._again: collections.deque[JobItem] = collections.deque()
        self._busy: list[JobItem] = []
        self.elsewhere = 0
        self.left = 0
        self.stopped = False
        #: a progress bar (``update(1)`` per item finished here or elsewhere), if any
        self.progress: Any = None

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.update(1)

    # -- taking ----------------------------------------------------------------------------
    def late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _next(self) -> JobItem | None:
        if self._again:
            return self._again.popleft()
        it = next(self._source, None)
        if it is not None and self._unseen is not None:
            self._unseen -= 1
        return it

    def _stop(self) -> None:
        self.left += len(self._again) + len(self._busy) + (self._unseen or 0)
        self._again.clear()
        self._busy.clear()
        self._unseen = 0
        self._source = iter(())
        self.stopped = True

    def _scan(self) -> JobItem | None:
        """Claim the next free item of this pass; None when the pass is over."""
        while True:
            if self.late():
                self._stop()
                return None
            it = self._next()
            if it is None:
                return None
            state = self.claims.claim(it.key, it.ttl_s, lambda: self.done(it.key))
            if state == CLAIMED:
                return it
            if state == BUSY:
                self._busy.append(it)
            else:
                self.elsewhere += 1
                self._tick()

    @property
    def remaining(self) -> int:
        """Items not yet taken (for lazy items: only those already drawn)."""
        return (self._unseen or 0) + len(self._again) + len(self._busy)

    @property
    def pending(self) -> bool:
        """Whether items held by live jobs are still to be looked at again."""
        return bool(self._busy or self._again)

    def take(self, wait: bool = True) -> JobItem | None:
        """The next item this job now holds a lease on. None when nothing is left to take
        (all measured, here or elsewhere; or past the deadline) — or, with ``wait`` False,
        when every remaining item is held by a live job (call again later)."""
        while True:
            it = self._scan()
            if it is not None or self.stopped or not self._busy:
                return it
            self._again.extend(self._busy)
            self._busy.clear()
            if not wait:
                return None
            self.pause()

    # -- holding -----------------------------------------------------------------------------
    def renew(self, item: JobItem, seconds: float) -> None:
        """Extend our lease by ``seconds`` (plus the grace); LostLease if it was taken over."""
        if not self.claims.renew(item.key, seconds + LEASE_GRACE_S):
            raise LostLease(item.key.target)

    def commit(self, item: JobItem, rows: list[Measurement]) -> list[int] | None:
        """Write the item's rows and drop its lease in one transaction; None (nothing
        stored, counted in ``elsewhere``) if the lease was lost meanwhile."""
        ids = self.claims.commit(item.key, rows)
        if ids is None:
            self.elsewhere += 1
        self._tick()
        return ids

    def release(self, item: JobItem) -> None:
        """Give one lease back unused (its rows went elsewhere, or were not measured)."""
        self.claims.release(item.key)
        self._tick()

    def close(self) -> None:
        self.claims.release_all()

    def __enter__(self) -> "LeasedItems":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the local loop ----------------------------------------------------------------------
    def run(self, measure: Callable[[JobItem], list[Measurement]],
            stored: Callable[[JobItem, list[Measurement]], None] | None = None) -> None:
        """Take, measure, commit until nothing is left. ``measure`` calls :meth:`renew`
        before each request it sends; ``stored`` sees the rows of every item written."""
        while (it := self.take()) is not None:
            try:
                rows = measure(it)
            except LostLease:
                self.elsewhere += 1
                continue
            if self.commit(it, rows) is not None and stored is not None:
                stored(it, rows)
