"""Group-commit fsync: many writers, one ``fdatasync`` per burst.

Writers mark files dirty and, when they need durability before answering, await
:meth:`Flusher.durable`. A single background task syncs everything dirty in a worker thread,
so requests arriving while a sync runs share the next one.

Example:
    >>> import asyncio
    >>> async def demo():
    ...     f = Flusher("ack", 1000)
    ...     f.start()
    ...     await f.durable()
    ...     await f.stop()
    >>> asyncio.run(demo())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Syncable(Protocol):
    """Anything with a blocking ``sync()`` (a segment, an index, a state log)."""

    def sync(self) -> None: ...


class Flusher:
    """Coalesces fsyncs according to the broker's ``fsync_policy``.

    Example:
        >>> Flusher("never", 1000).policy
        'never'
    """

    def __init__(self, policy: str, interval_ms: int) -> None:
        self.policy = policy
        self.interval = interval_ms / 1000.0
        self._dirty: set[Syncable] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the background sync task (needs a running loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="flusher")

    def mark_dirty(self, obj: Syncable) -> None:
        """Remember ``obj`` needs an fsync; cheap, call on every write."""
        self._dirty.add(obj)

    def durable(self) -> asyncio.Future[None]:
        """A future done once everything written so far is on disk (per policy)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if self.policy != "ack" or self._task is None:
            fut.set_result(None)
            return fut
        self._waiters.append(fut)
        assert self._wake is not None
        self._wake.set()
        return fut

    def forget(self, obj: Syncable) -> None:
        """Drop ``obj`` from the dirty set (it is being closed or deleted)."""
        self._dirty.discard(obj)

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            await self.flush_now()

    async def flush_now(self) -> None:
        """Sync all dirty objects now and release the waiters."""
        dirty, self._dirty = self._dirty, set()
        waiters, self._waiters = self._waiters, []
        if dirty and self.policy != "never":
            try:
                await asyncio.to_thread(_sync_all, list(dirty))
            except Exception:  # pragma: no cover - logged, waiters still released
                log.exception("fsync failed")
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def stop(self) -> None:
        """Final sync and stop the task."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        dirty, self._dirty = self._dirty, set()
        _sync_all(list(dirty))
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        self._waiters = []


def _sync_all(objs: list[Syncable]) -> None:
    for obj in objs:
        # closed concurrently (topic deleted, segment replaced): nothing left to sync
        with contextlib.suppress(OSError, ValueError):
            obj.sync()
