"""The processor API at run time: what ``stream.process(fn, stores=..., on_timer=...)`` runs.

``fn(ctx, key, value)`` gets a :class:`ProcessorContext`: the record's timestamp, headers
and partition, the processor's stores (:class:`KeyValueStore`), ``forward`` for output
records and ``schedule``/``cancel`` for per-key timers. Everything a processor does for a
record (store writes, timers, forwarded records) is part of the batch: committed with the
consumed offsets in one transaction under exactly-once, or not at all; a record whose
``fn`` raises leaves nothing behind and follows the error policy.

A timer follows one of two clocks. An event-time timer (``clock="event"``, the default) is
due once the partition's stream time (the highest record timestamp it has seen) reaches
its time, so a partition that receives no records fires none; it fires right after the
record that made it due. A wall-clock timer (``clock="wall"``) is due at its time on the
wall clock (``ctx.wall_time``): the worker owning a partition writes a tick to the
processor's tick topic about every second (:mod:`streamflow.runtime.ticks`), and
processing a tick fires the partition's due wall-clock timers. Timers fire earliest first,
through ``on_timer(ctx, key, payload)``; firing deletes the timer in the same transaction,
so a timer fires exactly once across restarts and rebalances (its stores have changelogs
like every table).

Example:
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("shop")
    >>> seen = app.table_store("seen", key="str", value="int", default=int)
    >>> def count(ctx, key, value):
    ...     ctx.store("seen")[key] += 1
    ...     ctx.forward(key, ctx.store("seen")[key])
    >>> app.stream(app.topic("clicks")).process(count, stores=[seen]).to(
    ...     app.topic("counts", value="int"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("clicks", [("u1", {}), ("u1", {}), ("u2", {})])
    ...     driver.read("counts")
    [('u1', 1), ('u1', 2), ('u2', 1)]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from streamflow.codecs.timers import EVENT_TIME, WALL_CLOCK, due_range
from streamflow.dsl.topology import KeyValueStoreNode, ProcessorNode
from streamflow.runtime.batch import (
    DELETED,
    MISSING,
    BatchContext,
    Push,
    Record,
    TableBatch,
    detached,
)
from streamflow.runtime.sender import partition_for

__all__ = ["KeyValueStore", "ProcessorContext", "compile_processor"]

log = logging.getLogger(__name__)

_CLOCK_NAMES = {"event": EVENT_TIME, "wall": WALL_CLOCK}
# A timer callback that keeps scheduling due timers is cut off after this many firings.
_MAX_FIRINGS_PER_RECORD = 10_000


class KeyValueStore:
    """One partition of a processor's store, as a batch sees it: a mapping of keys to values.

    ``store[key]`` reads (the store's ``default()`` for a missing key, or ``KeyError``
    without a default), ``store[key] = value`` writes, ``del store[key]`` deletes; ``get``,
    ``in`` and ``setdefault`` work as on a dict. Writes become visible to table views once
    the batch is committed.

    >>> from streamflow.runtime.batch import TableBatch, MISSING
    >>> store = KeyValueStore("stock", TableBatch({}, lambda key: MISSING), default=int)
    >>> store["apple"] += 3
    >>> store["apple"], store.get("pear"), "pear" in store
    (3, 0, False)
    """

    __slots__ = ("_batch", "_default", "_owner", "name")

    def __init__(
        self,
        name: str,
        batch: TableBatch,
        default: Callable[[], Any] | None = None,
        *,
        owner: tuple[int, int, Callable[[Any], bytes]] | None = None,
    ) -> None:
        """``owner``: ``(partition, partitions, encode_key)`` when writes must stay in the
        partition being processed (keys of other partitions raise)."""
        self.name = name
        self._batch = batch
        self._default = default
        self._owner = owner

    def _check_owned(self, key: Any) -> None:
        if self._owner is None:
            return
        partition, partitions, encode_key = self._owner
        home = partition_for(encode_key(key), partitions)
        if home != partition:
            raise ValueError(
                f"store {self.name!r} is partitioned like its input: key {key!r} belongs to "
                f"partition {home}, but the record being processed is in partition "
                f"{partition}. Write the keys of the record's partition (its key), or send "
                "the change to a topic keyed by this key and apply it where it belongs"
            )

    def _read(self, key: Any) -> Any:
        # A copy: changing a value read without writing it back changes nothing stored.
        value = self._batch.load(key, _missing)
        return value if value is MISSING else detached(value)

    def __getitem__(self, key: Any) -> Any:
        value = self._read(key)
        if value is MISSING:
            if self._default is None:
                raise KeyError(key)
            return self._default()
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``; ``default`` if absent (the store's default if it has one)."""
        value = self._read(key)
        if value is MISSING:
            return self._default() if self._default is not None else default
        return value

    def __contains__(self, key: Any) -> bool:
        return self._read(key) is not MISSING

    def __setitem__(self, key: Any, value: Any) -> None:
        if value is None:
            raise ValueError(
                f"store {self.name!r} cannot hold None (a changelog tombstone): "
                f"use `del store[{key!r}]` to delete the key"
            )
        if key is None:
            raise ValueError(f"store {self.name!r} has no row for the key None")
        self._check_owned(key)
        self._batch.updated[key] = value

    def __delitem__(self, key: Any) -> None:
        if self._read(key) is MISSING:
            raise KeyError(key)
        self._check_owned(key)
        self._batch.updated[key] = DELETED

    def setdefault(self, key: Any, value: Any) -> Any:
        """``store[key]`` if present, else store ``value`` and return it."""
        found = self._read(key)
        if found is MISSING:
            self[key] = value
            return value
        return found

    def __repr__(self) -> str:
        return f"KeyValueStore({self.name!r})"


def _missing() -> Any:
    return MISSING


class _Timers:
    """A partition's timers for one batch: the timer store by ``(clock, due, key)``, the
    index by key (``[clock, due]``), and what this batch scheduled (so due timers are found
    before they are written)."""

    def __init__(self, timers: TableBatch, index: TableBatch) -> None:
        self.timers = timers
        self.index = index
        self.scheduled: dict[tuple[str, int, Any], Any] = {}

    def schedule(self, key: Any, clock: str, due: int, payload: Any) -> None:
        self.cancel(key)
        self.timers.updated[(clock, due, key)] = payload
        self.index.updated[key] = [clock, due]
        self.scheduled[(clock, due, key)] = payload

    def cancel(self, key: Any) -> bool:
        entry = self.index.load(key, _missing)
        if entry is MISSING:
            return False
        clock, due = entry
        self.timers.updated[(clock, due, key)] = DELETED
        self.index.updated[key] = DELETED
        self.scheduled.pop((clock, due, key), None)
        return True

    def due(self, clock: str, now: int) -> list[tuple[tuple[str, int, Any], Any]]:
        """``clock``'s timers due at ``now``, earliest first."""
        found = dict(self.timers.scan_stored(*due_range(clock, now)))
        found.update((k, v) for k, v in self.scheduled.items() if k[0] == clock and k[1] <= now)
        return sorted(found.items(), key=lambda item: item[0][1])

    def fired(self, clock: str, due: int, key: Any) -> None:
        self.timers.updated[(clock, due, key)] = DELETED
        self.scheduled.pop((clock, due, key), None)
        if self.index.load(key, _missing) == [clock, due]:
            self.index.updated[key] = DELETED


class ProcessorContext:
    """What a processor function sees of the record it processes, and what it can do.

    ``key``, ``timestamp`` (ms), ``headers`` and ``partition`` describe the record (in
    ``on_timer``: the timer's key and due time, and the headers of the record that made it
    due). ``store(name)`` is one of the processor's stores; ``forward(key, value)`` sends a
    record downstream (timed like the record, unless ``timestamp=`` says otherwise);
    ``schedule(key, at_ms, payload)`` sets the key's timer (replacing an earlier one) and
    ``cancel(key)`` removes it. ``stream_time`` is the partition's stream time,
    ``wall_time`` the wall clock (ms), for timers with ``clock="wall"``.

    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("shop")
    >>> def remind(ctx, key, order):
    ...     ctx.schedule(key, ctx.timestamp + 1000, {"order": key})
    >>> def expired(ctx, key, payload):
    ...     ctx.forward(key, {"expired": payload["order"], "at": ctx.timestamp})
    >>> orders = app.topic("orders", partitions=1)  # stream time is per partition
    >>> app.stream(orders).process(remind, on_timer=expired).to(app.topic("out"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("orders", "o1", {}, timestamp=0)
    ...     driver.pipe("orders", "o2", {}, timestamp=1500)  # stream time passes o1's timer
    ...     driver.read("out")
    [('o1', {'expired': 'o1', 'at': 1000})]
    """

    __slots__ = (
        "_batch",
        "_node",
        "_out",
        "_src",
        "_stores",
        "_timers",
        "key",
        "partition",
        "stream_time",
        "timestamp",
    )

    def __init__(
        self,
        node: ProcessorNode,
        batch: BatchContext,
        stores: dict[str, KeyValueStore],
        timers: _Timers | None,
        stream_time: int,
    ) -> None:
        self._node = node
        self._batch = batch
        self._stores = stores
        self._timers = timers
        self._out: list[Record] = []
        self._src = 0
        self.partition = batch.partition
        self.stream_time = stream_time
        self.key: Any = None
        self.timestamp = 0

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """The headers of the consumed record being processed."""
        return self._batch.headers_of(self._src)

    def store(self, name: str) -> KeyValueStore:
        """The processor's store ``name`` (one given in ``stores=``)."""
        found = self._stores.get(name)
        if found is None:
            known = ", ".join(sorted(self._stores)) or "none"
            raise KeyError(
                f"processor {self._node.name!r} has no store {name!r} (its stores: {known}); "
                "pass it in stream.process(..., stores=[app.table_store(...)])"
            )
        return found

    def forward(self, key: Any, value: Any, *, timestamp: int | None = None) -> None:
        """Send ``(key, value)`` downstream."""
        self._out.append(
            (key, value, self.timestamp if timestamp is None else timestamp, self._src)
        )

    @property
    def wall_time(self) -> int:
        """Wall-clock time, in ms (the clock of ``clock="wall"`` timers)."""
        return self._batch.now_ms()

    def schedule(self, key: Any, at_ms: int, payload: Any = None, *, clock: str = "event") -> None:
        """Fire ``on_timer(ctx, key, payload)`` once, when ``clock`` reaches ``at_ms``.

        ``clock="event"``: stream time (record timestamps); ``clock="wall"``: the wall
        clock (``ctx.wall_time``), checked about every second even when no record comes.
        One timer per key: scheduling again replaces the key's timer, whatever its clock.
        """
        if clock not in _CLOCK_NAMES:
            raise ValueError(f"a timer's clock is 'event' or 'wall', got {clock!r}")
        if self._timers is None:
            raise TypeError(
                f"processor {self._node.name!r} has no on_timer callback: give "
                "stream.process(..., on_timer=fn) to schedule timers"
            )
        if key is None:
            raise ValueError("a timer needs a key")
        self._timers.schedule(key, _CLOCK_NAMES[clock], int(at_ms), payload)

    def cancel(self, key: Any) -> bool:
        """Remove ``key``'s timer; whether there was one."""
        if self._timers is None:
            return False
        return self._timers.cancel(key)

    def _begin(self, key: Any, timestamp: int, src: int) -> None:
        self.key, self.timestamp, self._src = key, timestamp, src

    def _take(self) -> list[Record]:
        out, self._out = self._out, []
        return out

    def __repr__(self) -> str:
        return f"ProcessorContext({self._node.name!r}, partition={self.partition})"


def compile_processor(node: ProcessorNode, forward: Push) -> tuple[Push, Push]:
    """The operator of ``stream.process``: ``(records, ticks)``.

    ``records`` runs ``fn`` per record, then fires the event-time timers each record made
    due; ``ticks`` (records of the processor's tick topic, written about every second for
    each partition by the worker that owns it) fires the wall-clock timers due by now.
    """
    fn = node.fn
    on_timer = node.on_timer
    stream_time: dict[int, int] = {}
    defaults = {
        store.store: store.default if isinstance(store, KeyValueStoreNode) else None
        for store in node.stores
    }

    def context(ctx: BatchContext) -> tuple[ProcessorContext, _Timers | None]:
        stores = {
            name: KeyValueStore(name, ctx.table(name), default)
            for name, default in defaults.items()
        }
        timers = None
        if node.timers is not None and node.timer_index is not None:
            timers = ctx.scratch.get((node.name, "timers"))
            if timers is None:
                timers = ctx.scratch[(node.name, "timers")] = _Timers(
                    ctx.table(node.timers.store), ctx.table(node.timer_index.store)
                )
        now = ctx.scratch.get((node.name, "now"), stream_time.get(ctx.partition, -(1 << 62)))
        return ProcessorContext(node, ctx, stores, timers, now), timers

    def push(records: list[Record], ctx: BatchContext) -> None:
        partition = ctx.partition
        pc, timers = context(ctx)
        now = pc.stream_time
        out: list[Record] = []
        for key, value, ts, src in records:
            pc._begin(key, ts, src)
            if ts > now:
                now = pc.stream_time = ts
            try:
                fn(pc, key, value)
            except Exception as exc:
                pc._take()
                ctx.fail(src, exc, node.name)
                continue
            out.extend(pc._take())
            if timers is not None and on_timer is not None:
                out.extend(_fire_due(node, on_timer, pc, timers, EVENT_TIME, now, src, ctx))
        ctx.scratch[(node.name, "now")] = now
        ctx.after_write.append(lambda: stream_time.__setitem__(partition, now))
        if out:
            forward(out, ctx)

    def tick(records: list[Record], ctx: BatchContext) -> None:
        pc, timers = context(ctx)
        if timers is None or on_timer is None or not records:
            return
        src = records[-1][3]
        out = list(_fire_due(node, on_timer, pc, timers, WALL_CLOCK, ctx.now_ms(), src, ctx))
        if out:
            forward(out, ctx)

    return push, tick


def _fire_due(
    node: ProcessorNode,
    on_timer: Callable[[Any, Any, Any], Any],
    pc: ProcessorContext,
    timers: _Timers,
    clock: str,
    now: int,
    src: int,
    ctx: BatchContext,
) -> Iterator[Record]:
    """Fire ``clock``'s timers due at ``now`` (and those they schedule due by then),
    earliest first.

    A callback that raises is logged and its timer dropped: the record that made it due
    was processed fine and must not be dead-lettered for it.
    """
    fired = 0
    while fired < _MAX_FIRINGS_PER_RECORD:
        due = timers.due(clock, now)
        if not due:
            return
        for (_, at, key), payload in due:
            timers.fired(clock, at, key)
            fired += 1
            pc._begin(key, at, src)
            try:
                on_timer(pc, key, payload)
            except Exception as exc:
                pc._take()
                ctx.dropped += 1
                log.warning(
                    "Step %s dropped the timer of key %r due at %d: on_timer raised %s: %s",
                    node.name,
                    key,
                    at,
                    type(exc).__name__,
                    exc,
                )
                continue
            yield from pc._take()
    log.warning(
        "Step %s fired %d timers after one record; the rest wait for the next record",
        node.name,
        fired,
    )
