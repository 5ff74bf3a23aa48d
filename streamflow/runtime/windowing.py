"""Windowed aggregations: tumbling, hopping, sliding and session windows, over a batch.

For each record the window kind's *placer* says which windows change and how: new
aggregates, windows it creates, sessions a merge removes (or ``None``: the record is late,
it only falls into closed windows). The placer only reads; the record's changes are
written once all of them are known, so a record that makes user code raise leaves
nothing behind.

A partition's *stream time* is the highest timestamp it has seen. With ``emit="update"``
every change goes downstream as it happens. With ``emit="close"`` a window's entry waits
in the aggregation's *closing* store, under its close time, next to the partition's
stream time; once stream time reaches the close time the window's final aggregate goes
downstream and the entry is deleted, in the same batch (and so, under exactly-once, the
same transaction): a final result is sent once, across crashes and restarts.

Example:
    >>> from streamflow import App, session
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> views = app.stream(app.topic("views", value="json")).group_by_key()
    >>> final = views.windowed_by(session(30, emit="close")).count(name="sessions")
    >>> final.to_stream().map(lambda w, n: (w.key, [w.start, w.end, n])).to(
    ...     app.topic("finished", value="json"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("views", [("u1", {}, 0), ("u1", {}, 10_000), ("u1", {}, 99_000)])
    ...     driver.read("finished")
    [('u1', [0, 10000, 2])]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamflow.codecs.join import time_bytes
from streamflow.codecs.windowed import window_start
from streamflow.dsl.topology import AggregateNode
from streamflow.dsl.windows import SessionWindows, SlidingWindows, Windowed
from streamflow.runtime.batch import (
    DELETED,
    MISSING,
    BatchContext,
    Push,
    Record,
    TableBatch,
    detached,
)

__all__ = ["LateRecord", "sweep_timed_store", "windowed_aggregate"]

#: The closing store's key of the partition's stream time (sorts before every close time).
STREAM_TIME_KEY = b"\x00"

#: A window's changed aggregate (or ``DELETED``), and whether the record created it.
Change = tuple[Windowed, Any, bool]


class LateRecord(ValueError):
    """A record that only falls into closed windows (dead-lettered with
    ``late="dead-letter"``; neither retried nor stopping the worker).

    >>> str(LateRecord.of("per-minute", 1_000, 70_000, 5_000))
    'late for every window of per-minute: timestamp 1000, stream time 70000, grace 5000 ms'
    """

    @classmethod
    def of(cls, step: str, timestamp: int, stream_time: int, grace_ms: int) -> LateRecord:
        """The error of a record of ``step`` at ``timestamp``."""
        return cls(
            f"late for every window of {step}: timestamp {timestamp}, stream time "
            f"{stream_time}, grace {grace_ms} ms"
        )


def windowed_aggregate(node: AggregateNode, forward: Push) -> Push:
    """Compile a windowed :class:`~streamflow.dsl.topology.AggregateNode`."""
    windows = node.windows
    assert windows is not None
    placer: _Placer
    if isinstance(windows, SessionWindows):
        placer = _SessionPlacer(node)
    elif isinstance(windows, SlidingWindows):
        placer = _SlidingPlacer(node)
    else:
        placer = _TimePlacer(node)
    clock = _StreamClock(node)
    closing = _Closing(node) if node.closing is not None else None
    late_step = node.name

    def push(records: list[Record], ctx: BatchContext) -> None:
        view = _WindowView.of(node, ctx, ranged=placer.reads_ranges)
        now = started = clock.now(ctx, view.state)
        out: list[Record] = []
        last_src = -1
        for key, value, ts, src in records:
            if key is None:
                ctx.dropped += 1  # like Kafka Streams, records without a key are not aggregated
                continue
            now = max(now, ts)
            try:
                changes = placer.place(view, key, value, ts, now)
            except Exception as exc:
                ctx.fail(src, exc, node.name)
                continue
            if changes is None:
                if windows.late == "dead-letter":
                    ctx.fail(src, LateRecord.of(late_step, ts, now, windows.grace_ms), late_step)
                else:
                    ctx.dropped += 1
                    ctx.late[late_step] = ctx.late.get(late_step, 0) + 1
                continue
            last_src = src
            for window, new, created in changes:
                view.write(window, new)
                if closing is not None:
                    closing.track(ctx, window, new, created)
                else:
                    add = None if new is DELETED else detached(new)
                    out.append((window, add, ts, src))
        if closing is not None and now > started:
            out.extend(closing.due(ctx, view, now, last_src))
        clock.advance(ctx, view, now)
        if out:
            forward(out, ctx)

    return push


class _WindowView:
    """A windowed table partition as one batch sees it: what it stored, overlaid with what
    the batch wrote (by key, for range reads of one key's windows)."""

    __slots__ = ("buffer", "encode_key", "pending", "state")

    def __init__(
        self,
        state: TableBatch,
        encode_key: Callable[[Any], bytes],
        pending: dict | None,
        buffer: _Buffer | None = None,
    ) -> None:
        self.state = state
        self.encode_key = encode_key
        #: grouping key -> window -> aggregate (or DELETED) written by this batch; ``None``
        #: when no range is read
        self.pending = pending
        #: the records of a sliding-window aggregation
        self.buffer = buffer

    @classmethod
    def of(cls, node: AggregateNode, ctx: BatchContext, ranged: bool = True) -> _WindowView:
        """The view of ``node``'s table (and record buffer) in the batch of ``ctx``;
        ``ranged``: whether :meth:`of_key` is used (else writes are not indexed by key)."""
        encode_key = node.key_codec.inner.encode  # type: ignore[attr-defined]
        scratch = ctx.scratch.setdefault(node.name, ({} if ranged else None, {}))
        buffer = None
        if node.buffer is not None:
            buffer = _Buffer(ctx.table(node.buffer.store), encode_key, scratch[1])
        return cls(ctx.table(node.store), encode_key, scratch[0], buffer)

    def get(self, window: Windowed) -> Any:
        """The aggregate of ``window``, or ``MISSING``."""
        return self.state.load(window, _missing)

    def of_key(self, key: Any, low_start: int, high_start: int) -> dict[Windowed, Any]:
        """The windows of ``key`` starting in ``[low_start, high_start]``, by start."""
        prefix = self.encode_key(key)
        low, high = max(0, low_start), max(0, high_start + 1)
        found = {
            w: agg
            for w, agg in self.state.scan_stored(prefix + _start(low), prefix + _start(high))
            if w.key == key
        }
        for window, agg in (self.pending or {}).get(key, {}).items():
            if low <= window.start < high:
                if agg is DELETED:
                    found.pop(window, None)
                else:
                    found[window] = agg
        return dict(sorted(found.items(), key=lambda item: (item[0].start, item[0].end)))

    def write(self, window: Windowed, aggregate: Any) -> None:
        """Store ``aggregate`` (or ``DELETED``) for ``window`` when the batch is written."""
        self.state.updated[window] = aggregate
        if self.pending is not None:
            self.pending.setdefault(window.key, {})[window] = aggregate


def _start(ms: int) -> bytes:
    return ms.to_bytes(8, "big")


def _missing() -> Any:
    return MISSING


class _Placer:
    """Which windows a record changes; ``None`` when it is late for all of them."""

    #: Whether it reads a key's windows by range (sliding, session).
    reads_ranges = True

    def __init__(self, node: AggregateNode) -> None:
        assert node.windows is not None
        self.windows = node.windows
        self.initializer = node.initializer
        self.aggregator = node.aggregator
        #: The windows' size (sessions: gap) and grace, in milliseconds.
        self.span = self.windows.span_ms
        self.grace = self.windows.grace_ms

    def place(
        self, view: _WindowView, key: Any, value: Any, ts: int, now: int
    ) -> list[Change] | None:
        raise NotImplementedError


class _TimePlacer(_Placer):
    """Tumbling and hopping windows: every window containing the record, while open."""

    reads_ranges = False

    def place(
        self, view: _WindowView, key: Any, value: Any, ts: int, now: int
    ) -> list[Change] | None:
        windows = self.windows
        targets = [windows.window(key, s) for s in windows.starts(ts)]  # type: ignore[attr-defined]
        targets = [w for w in targets if windows.close_ms(w) > now]
        if not targets:
            return None
        changes = []
        for window in targets:  # all of a record's windows, or none of them
            current = view.get(window)
            created = current is MISSING
            base = self.initializer() if created else current
            changes.append((window, self.aggregator(key, value, base), created))
        return changes


class _SlidingPlacer(_Placer):
    """Sliding windows (Kafka Streams' ``SlidingWindows``), from the records they hold.

    A record at ``t`` adds itself to every open window containing it and creates, when
    missing and open: its left window ``[t - size, t]``, its right window
    ``[t + 1, t + 1 + size]`` if records fall into it, and the right window of the
    record just before it, which only now holds a record. A created window's aggregate is
    folded from the buffered records (kept for ``size + grace``).
    """

    def place(
        self, view: _WindowView, key: Any, value: Any, ts: int, now: int
    ) -> list[Change] | None:
        size, grace = self.span, self.grace
        if ts + size + grace < now:
            return None
        buffer = view.buffer
        assert buffer is not None
        held = buffer.of_key(key, ts - size - 1, ts + size + 1)
        held.setdefault(ts, []).append(value)
        changes: list[Change] = []
        starts: set[int] = set()
        for window, aggregate in view.of_key(key, ts - size, ts + 1).items():
            starts.add(window.start)
            if window.start <= ts <= window.end and window.end + grace >= now:
                changes.append((window, self.aggregator(key, value, aggregate), False))

        def create(start: int) -> None:
            end = start + size
            if start in starts or end + grace < now:
                return
            starts.add(start)
            values = [v for t in sorted(held) if start <= t <= end for v in held[t]]
            if values:
                aggregate = self.initializer()
                for held_value in values:
                    aggregate = self.aggregator(key, held_value, aggregate)
                changes.append((Windowed(key, start, end), aggregate, True))

        create(max(0, ts - size))
        create(ts + 1)
        before = [t for t in held if t < ts]
        if before and max(before) + 1 + size >= ts:
            create(max(before) + 1)
        buffer.add(key, ts, held[ts])
        return changes


class _Buffer:
    """The records a sliding-window aggregation keeps, by key and time, as one batch sees
    them (stored, overlaid with what the batch added)."""

    __slots__ = ("encode_key", "pending", "state")

    def __init__(self, state: TableBatch, encode_key: Callable[[Any], bytes], pending: dict):
        self.state = state
        self.encode_key = encode_key
        self.pending = pending  # key -> time -> values written by this batch

    def of_key(self, key: Any, low: int, high: int) -> dict[int, list[Any]]:
        """Times in ``[low, high]`` to the values of ``key``'s records at that time."""
        prefix = self.encode_key(key)
        found = {
            ts: list(values)
            for (k, ts), values in self.state.scan_stored(
                prefix + time_bytes(low), prefix + time_bytes(high + 1)
            )
            if k == key
        }
        for ts, values in self.pending.get(key, {}).items():
            if low <= ts <= high:
                found[ts] = list(values)
        return found

    def add(self, key: Any, ts: int, values: list[Any]) -> None:
        """Keep ``values``, all of ``key``'s records at ``ts``."""
        self.state.updated[(key, ts)] = values
        self.pending.setdefault(key, {})[ts] = values

    def sweep(self, before: int) -> None:
        """Forget the records timed before ``before``: no open window can hold them."""
        sweep_timed_store(self.state, self.pending, before)


class _SessionPlacer(_Placer):
    """Session windows: the record joins (and merges) the sessions within ``gap`` of it."""

    def __init__(self, node: AggregateNode) -> None:
        super().__init__(node)
        assert node.merger is not None
        self.merger = node.merger

    def place(
        self, view: _WindowView, key: Any, value: Any, ts: int, now: int
    ) -> list[Change] | None:
        gap, windows = self.span, self.windows
        found = {w: a for w, a in view.of_key(key, 0, ts + gap).items() if w.end >= ts - gap}
        start = min([ts, *(w.start for w in found)])
        end = max([ts, *(w.end for w in found)])
        if end + self.grace < now or any(windows.close_ms(w) <= now for w in found):
            return None  # late, or it would change a session that closed
        merged = Windowed(key, start, end)
        if found:
            sessions = iter(found.values())
            aggregate = next(sessions)
            for other in sessions:
                aggregate = self.merger(key, aggregate, other)
        else:
            aggregate = self.initializer()
        aggregate = self.aggregator(key, value, aggregate)
        changes: list[Change] = [(w, DELETED, False) for w in found if w != merged]
        changes.append((merged, aggregate, merged not in found))
        return changes


class _StreamClock:
    """A windowed aggregation's stream time per partition, and its retention sweeps.

    With ``emit="close"`` stream time is stored (in the closing store, with the batch), so
    a restarted or moved partition goes on from exactly where it was. Otherwise it is kept
    in memory and, when a partition is first seen, restored from the store: the latest
    window start, a lower bound. Expired windows (and buffered records) are swept every
    tenth of the retention of stream time.
    """

    def __init__(self, node: AggregateNode) -> None:
        assert node.windows is not None
        self.windows = node.windows
        self.closing = node.closing.store if node.closing is not None else None
        self.retention = self.windows.retention_ms
        self.sweep_every = max(1000, self.retention // 10)
        self.in_memory: dict[int, int] = {}
        self.next_sweep: dict[int, int] = {}

    def now(self, ctx: BatchContext, state: TableBatch) -> int:
        """The stream time of ``ctx``'s partition before the batch."""
        partition = ctx.partition
        if self.closing is not None:
            closing = ctx.table(self.closing)
            now = closing.load(STREAM_TIME_KEY, lambda: _latest_window_start(state))
        else:
            if partition not in self.in_memory:
                self.in_memory[partition] = _latest_window_start(state)
            now = self.in_memory[partition]
        self.next_sweep.setdefault(partition, now + self.sweep_every)
        return now

    def advance(self, ctx: BatchContext, view: _WindowView, now: int) -> None:
        """Keep ``now`` as the partition's stream time once the batch is written; sweep."""
        partition = ctx.partition
        if now >= self.next_sweep[partition]:
            _expire_windows(view.state, before=now - self.retention)
            if view.buffer is not None:
                # The record just before the oldest an open window may hold is kept: a
                # record right after it creates its right window.
                view.buffer.sweep(now - self.windows.span_ms - self.windows.grace_ms - 1)
            ctx.after_write.append(
                lambda: self.next_sweep.__setitem__(partition, now + self.sweep_every)
            )
        if self.closing is not None:
            closing = ctx.table(self.closing)
            if closing.load(STREAM_TIME_KEY, _missing) != now:
                closing.updated[STREAM_TIME_KEY] = now
        else:
            ctx.after_write.append(lambda: self.in_memory.__setitem__(partition, now))


class _Closing:
    """The windows of an ``emit="close"`` aggregation that have not closed yet, by close
    time: a window's entry is ``close time + window key``; once stream time reaches it the
    window's final aggregate is sent and the entry deleted."""

    def __init__(self, node: AggregateNode) -> None:
        assert node.windows is not None and node.closing is not None
        self.windows = node.windows
        self.store = node.closing.store
        self.encode = node.key_codec.encode
        self.decode = node.key_codec.decode

    def track(self, ctx: BatchContext, window: Windowed, aggregate: Any, created: bool) -> None:
        """Note a window the batch created (or a session a merge deleted)."""
        if not created and aggregate is not DELETED:
            return
        entry = time_bytes(self.windows.close_ms(window)) + self.encode(window)
        ctx.table(self.store).updated[entry] = DELETED if aggregate is DELETED else 1

    def due(self, ctx: BatchContext, view: _WindowView, now: int, src: int) -> list[Record]:
        """The final results of the windows closed at stream time ``now``, oldest first;
        their entries are deleted. ``src``: the consumed record that closed them."""
        index = ctx.table(self.store)
        end = time_bytes(now + 1)
        due = [entry for entry, _ in index.scan_stored(_FIRST_CLOSE, end)]
        due += [
            entry
            for entry, mark in index.updated.items()
            if mark is not DELETED and _FIRST_CLOSE <= entry < end
        ]
        out: list[Record] = []
        for entry in sorted(due):
            index.updated[entry] = DELETED
            window = self.decode(entry[8:])
            aggregate = view.get(window)
            if aggregate is not MISSING:  # else its retention ended first
                timestamp = window.end if self.windows.end_inclusive else window.end - 1
                out.append((window, detached(aggregate), timestamp, src))
        return out


#: The smallest close-time entry of a closing store (the stream time sorts before it).
_FIRST_CLOSE = b"\x01"


def sweep_timed_store(store: TableBatch, pending: dict, before: int) -> None:
    """Delete the records timed before ``before`` from a store keyed ``(key, time)`` (a
    stream-stream join's window store, a sliding window's record buffer); ``pending``:
    ``key -> time -> values`` the batch wrote, pruned likewise.

    >>> from streamflow.runtime.batch import TableBatch
    >>> store = TableBatch(cache={}, read=lambda key: MISSING)
    >>> pending = {"k": {5: ["a"], 9: ["b"]}}
    >>> sweep_timed_store(store, pending, before=8)
    >>> pending, store.updated
    ({'k': {9: ['b']}}, {('k', 5): <deleted>})
    """
    for raw in store.stored_keys():
        if int.from_bytes(raw[-8:], "big") - (1 << 63) < before:
            store.updated[store.decode_key(raw)] = DELETED
    for key, times in pending.items():
        for ts in [t for t in times if t < before]:
            store.updated[(key, ts)] = DELETED
            del times[ts]


def _latest_window_start(state: TableBatch) -> int:
    """The latest window start stored in a windowed table partition (a session's: its end),
    or -1 when empty."""
    return max((window_start(raw) for raw in state.stored_keys()), default=-1)


def _expire_windows(state: TableBatch, before: int) -> None:
    """Delete the partition's windows whose retention time (start; a session: end) is at
    or before ``before``."""
    for raw in state.stored_keys():
        if window_start(raw) <= before:
            state.delete(state.decode_key(raw))
