"""Physical operators: each plan node compiled into a function over a batch of records.

A record inside a batch is the tuple ``(key, value, timestamp_ms, source_index)``;
``source_index`` points at the consumed record it came from, so that a failure anywhere
downstream can dead-letter the original bytes. Operators work on whole lists: the per-record
cost is one Python call of the user's function, nothing more.

Example:
    >>> from streamflow.dsl.topology import FilterNode
    >>> from streamflow.runtime.processors import compile_node
    >>> from streamflow.runtime.batch import BatchContext
    >>> node = FilterNode(name="filter-1", predicate=lambda k, v: v > 1)
    >>> kept = []
    >>> push = compile_node(node, terminal=lambda records, ctx: kept.extend(records))
    >>> push([("a", 1, 0, 0), ("b", 2, 0, 1)], BatchContext.for_tests())
    >>> kept
    [('b', 2, 0, 1)]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from streamflow.codecs.change import ADD, SUBTRACT
from streamflow.codecs.foreign_key import SUBSCRIBE, UNSUBSCRIBE, prefix_end, value_hash
from streamflow.codecs.join import time_bytes
from streamflow.dsl.topology import (
    AgentNode,
    AggregateNode,
    BranchNode,
    BranchOutputNode,
    FilterNode,
    FlatMapNode,
    FlatMapValuesNode,
    ForeignKeyJoinNode,
    ForeignKeyLookupNode,
    ForeignKeySubscribeNode,
    ForeignKeySubscriptionNode,
    GlobalTableJoinNode,
    MapNode,
    MapValuesNode,
    MergeNode,
    Node,
    PeekNode,
    ProcessorNode,
    SelectKeyNode,
    SinkNode,
    SourceNode,
    StoreNode,
    StreamJoinNode,
    StreamTableJoinNode,
    TableFilterNode,
    TableJoinNode,
    TableMapValuesNode,
    TableRegroupNode,
    TableSourceNode,
)
from streamflow.runtime.agents import compile_agent
from streamflow.runtime.batch import DELETED, BatchContext, Push, Record, TableBatch, detached
from streamflow.runtime.processor_api import compile_processor
from streamflow.runtime.windowing import sweep_timed_store, windowed_aggregate

__all__ = ["Push", "SinkEncodeError", "compile_node", "compile_sources"]

log = logging.getLogger(__name__)


def compile_node(node: Node, terminal: Push | None = None) -> Push:
    """Compile ``node`` and everything below it into one ``push(records, ctx)`` function.

    ``terminal`` (tests) receives the output of a node without children.
    """
    return _Compiler(terminal).compile(node, None)


def compile_sources(sources: Sequence[SourceNode]) -> list[Push]:
    """Compile the sources of one sub-topology: one push per source, in order.

    A node below several sources (a merge, a table join) is compiled once and keeps one
    state, whichever source feeds it.
    """
    compiler = _Compiler(None)
    return [compiler.compile(source, None) for source in sources]


class _Compiler:
    """Compiles a plan graph once per node: nodes with two parents get one instance."""

    def __init__(self, terminal: Push | None) -> None:
        self.terminal = terminal
        self.compiled: dict[int, Any] = {}

    def compile(self, node: Node, parent: Node | None) -> Push:
        compiled = self.compiled.get(id(node))
        if compiled is None:
            compiled = self.compiled[id(node)] = self._build(node)
        if isinstance(node, TableJoinNode | StreamJoinNode):
            left, right = compiled
            return left if parent is node.left_parent else right
        if isinstance(node, ProcessorNode):
            records, ticks = compiled
            return ticks if parent is not None and parent is node.tick_source else records
        return compiled

    def _build(self, node: Node) -> Any:
        regroups = [c for c in node.children if c.consumes_changes]
        children = [self.compile(c, node) for c in node.children if c not in regroups]
        if isinstance(node, BranchNode):
            return _branch(node, children)
        if isinstance(node, ForeignKeySubscribeNode):
            return _fk_subscribe(node, *children)
        if not children and not regroups and self.terminal is not None:
            children = [self.terminal]
        forward = _fan_out(children)
        compiler = _COMPILERS.get(type(node))
        if compiler is None:
            raise TypeError(f"no runtime operator for {type(node).__name__}")
        if isinstance(node, StoreNode):
            # A table's re-groupings (and foreign-key subscriptions) get its changes,
            # (key, (old, new)), not its updates.
            changes = _fan_out([self.compile(c, node) for c in regroups]) if regroups else None
            return compiler(node, forward, changes)
        return compiler(node, forward)


def _fan_out(children: list[Push]) -> Push:
    if not children:
        return lambda records, ctx: None
    if len(children) == 1:
        return children[0]

    def push(records: list[Record], ctx: BatchContext) -> None:
        for child in children:
            child(records, ctx)

    return push


def _source(node: SourceNode, forward: Push) -> Push:
    """The records of a topic, timed by the stream's ``timestamp`` extractor if it has one."""
    extract = node.timestamp
    if extract is None:
        return forward

    def push(records: list[Record], ctx: BatchContext) -> None:
        out = []
        for key, value, _, src in records:
            try:
                out.append((key, value, event_time(extract(key, value)), src))
            except Exception as exc:
                ctx.fail(src, exc, "timestamp")
        if out:
            forward(out, ctx)

    return push


def event_time(extracted: Any) -> int:
    """A timestamp extractor's result as epoch milliseconds: an int, or an aware datetime.

    >>> from datetime import datetime, timezone
    >>> event_time(1_700_000_000_000), event_time(datetime(2024, 1, 1, tzinfo=timezone.utc))
    (1700000000000, 1704067200000)
    >>> event_time("noon")
    Traceback (most recent call last):
    ...
    TypeError: a timestamp extractor returns epoch milliseconds (int) or an aware datetime, got str
    """
    if isinstance(extracted, int) and not isinstance(extracted, bool):
        if extracted < 0:
            raise ValueError(f"a timestamp cannot be negative, got {extracted}")
        return extracted
    if isinstance(extracted, datetime):
        if extracted.tzinfo is None:
            raise ValueError("a timestamp extractor returned a naive datetime: give it a time zone")
        return round(extracted.timestamp() * 1000)
    raise TypeError(
        "a timestamp extractor returns epoch milliseconds (int) or an aware datetime, "
        f"got {type(extracted).__name__}"
    )


def _record_by_record(node: Node, forward: Push, step: Callable[[Record], Record | None]) -> Push:
    """A stateless operator: ``step`` maps each record to a new one, or ``None`` to drop it.

    A record whose step raises is reported to the context (dead-lettered) and skipped.
    """

    def push(records: list[Record], ctx: BatchContext) -> None:
        out = []
        add = out.append
        for record in records:
            try:
                result = step(record)
            except Exception as exc:
                ctx.fail(record[3], exc, node.name)
                continue
            if result is not None:
                add(result)
        if out:
            forward(out, ctx)

    return push


def _filter(node: FilterNode, forward: Push) -> Push:
    predicate = node.predicate
    return _record_by_record(node, forward, lambda r: r if predicate(r[0], r[1]) else None)


def _map_values(node: MapValuesNode, forward: Push) -> Push:
    mapper = node.mapper
    return _record_by_record(node, forward, lambda r: (r[0], mapper(r[1]), r[2], r[3]))


def _map(node: MapNode, forward: Push) -> Push:
    mapper = node.mapper

    def step(record: Record) -> Record:
        key, value = mapper(record[0], record[1])
        return (key, value, record[2], record[3])

    return _record_by_record(node, forward, step)


def _select_key(node: SelectKeyNode, forward: Push) -> Push:
    selector = node.selector
    return _record_by_record(node, forward, lambda r: (selector(r[0], r[1]), r[1], r[2], r[3]))


def _peek(node: PeekNode, forward: Push) -> Push:
    action = node.action

    def step(record: Record) -> Record:
        action(record[0], record[1])
        return record

    return _record_by_record(node, forward, step)


def _flat_map_values(node: FlatMapValuesNode, forward: Push) -> Push:
    mapper = node.mapper

    def push(records: list[Record], ctx: BatchContext) -> None:
        out: list[Record] = []
        for key, value, ts, src in records:
            try:
                out.extend((key, item, ts, src) for item in mapper(value))
            except Exception as exc:
                ctx.fail(src, exc, node.name)
        if out:
            forward(out, ctx)

    return push


def _sink(node: SinkNode, forward: Push) -> Push:
    """Encode records into the topic's output; a routed sink's values are
    ``(partition, value)`` and name the partition each record goes to."""
    topic = node.topic
    encode_key = topic.key_codec.encode
    encode_value = topic.value_codec.encode
    routed = node.routed

    def push(records: list[Record], ctx: BatchContext) -> None:
        out = ctx.output(topic)
        for key, value, ts, src in records:
            partition = None
            if routed:
                partition, value = value
            try:
                encoded = (
                    None if key is None else encode_key(key),
                    None if value is None else encode_value(value),
                    ts,
                )
            except Exception as exc:
                ctx.fail(src, SinkEncodeError.of(node, key, exc, encode_key), node.name)
                continue
            (out if partition is None else ctx.output(topic, partition)).append(encoded)

    return push


class SinkEncodeError(ValueError):
    """A record that the codecs of the topic it is written to cannot encode.

    The message names the topic, the codec and the fix; for a repartition topic whose value
    codec was inherited from the stream's source, the fix is a codec on ``group_by``.

    >>> from streamflow.topics import Topic
    >>> node = SinkNode(name="sink-1", topic=Topic("out", value="int"))
    >>> str(SinkEncodeError.of(node, "k", ValueError("not an int"), str.encode))
    "cannot encode a value for topic 'out' with its int codec: not an int"
    """

    @classmethod
    def of(
        cls, node: SinkNode, key: Any, error: Exception, encode_key: Callable[[Any], bytes]
    ) -> SinkEncodeError:
        """The error for a record of ``node`` that failed with ``error``."""
        try:
            if key is not None:
                encode_key(key)
            part, codec = "value", node.topic.value_codec
        except Exception:
            part, codec = "key", node.topic.key_codec
        topic = node.topic.name
        message = f"cannot encode a {part} for topic {topic!r} with its {codec.name} codec: {error}"
        if node.internal:
            message += (
                f"; a repartition topic uses the {part} codec the stream was read with unless "
                f"group_by is given {part}=... (e.g. {part}='json' after a map_values that "
                "changed the values)"
            )
        return cls(message)


def _aggregate(node: AggregateNode, forward: Push, changes: Push | None = None) -> Push:
    if node.windows is not None:
        return windowed_aggregate(node, forward)
    initializer = node.initializer
    aggregator = node.aggregator
    store_name = node.store

    def push(records: list[Record], ctx: BatchContext) -> None:
        state = ctx.table(store_name)
        load = state.load
        updated = state.updated
        out = []
        add = out.append
        changed: list[Record] = []
        for key, value, ts, src in records:
            if key is None:
                ctx.dropped += 1  # like Kafka Streams, records without a key are not aggregated
                continue
            try:
                if changes is None:
                    current = load(key, initializer)
                    new = aggregator(key, value, current)
                else:
                    old = load(key, _none)
                    old = detached(old)
                    new = aggregator(key, value, initializer() if old is None else old)
            except Exception as exc:
                ctx.fail(src, exc, node.name)
                continue
            updated[key] = new
            emitted = detached(new)
            add((key, emitted, ts, src))
            if changes is not None:
                changed.append((key, (old, emitted), ts, src))
        if out:
            forward(out, ctx)
        if changed:
            changes(changed, ctx)

    return push


def _pass(node: Node, forward: Push) -> Push:
    return forward


def _flat_map(node: FlatMapNode, forward: Push) -> Push:
    mapper = node.mapper

    def push(records: list[Record], ctx: BatchContext) -> None:
        out: list[Record] = []
        for key, value, ts, src in records:
            try:
                out.extend((k, v, ts, src) for k, v in mapper(key, value))
            except Exception as exc:
                ctx.fail(src, exc, node.name)
        if out:
            forward(out, ctx)

    return push


def _branch(node: BranchNode, branches: list[Push]) -> Push:
    """Each record to the first branch whose predicate holds (or the default branch)."""
    predicates = node.predicates

    def push(records: list[Record], ctx: BatchContext) -> None:
        routed: list[list[Record]] = [[] for _ in branches]
        for record in records:
            key, value = record[0], record[1]
            try:
                index = next(
                    (i for i, predicate in enumerate(predicates) if predicate(key, value)),
                    len(predicates) if node.default else None,
                )
            except Exception as exc:
                ctx.fail(record[3], exc, node.name)
                continue
            if index is not None:
                routed[index].append(record)
        for branch, out in zip(branches, routed, strict=True):
            if out:
                branch(out, ctx)

    return push


def _none() -> None:
    return None


def _table_update(
    node: StoreNode,
    forward: Push,
    derive: Callable[[Any, Any], Any],
    changes: Push | None = None,
) -> Push:
    """A table keeping ``derive(key, value)`` per key: ``None`` deletes the key.

    Every change goes downstream as ``(key, new_value)``, a deletion as ``(key, None)``
    (only for a key that was there); to ``changes`` (re-groupings) as
    ``(key, (old_value, new_value))``.
    """
    store_name = node.store

    def push(records: list[Record], ctx: BatchContext) -> None:
        state = ctx.table(store_name)
        updated = state.updated
        out = []
        add = out.append
        changed: list[Record] = []
        for key, value, ts, src in records:
            if key is None:
                ctx.dropped += 1  # a table has no row for a record without a key
                continue
            try:
                new = derive(key, value)
            except Exception as exc:
                ctx.fail(src, exc, node.name)
                continue
            old = state.load(key, _none)
            if new is None:
                if old is None:
                    continue
                updated[key] = DELETED
                add((key, None, ts, src))
            else:
                updated[key] = new
                new = detached(new)
                add((key, new, ts, src))
            if changes is not None:
                changed.append((key, (old, new), ts, src))
        if out:
            forward(out, ctx)
        if changed:
            changes(changed, ctx)

    return push


def _table_source(node: TableSourceNode, forward: Push, changes: Push | None = None) -> Push:
    return _table_update(node, forward, lambda key, value: value, changes)


def _table_filter(node: TableFilterNode, forward: Push, changes: Push | None = None) -> Push:
    predicate = node.predicate
    return _table_update(
        node, forward, lambda k, v: v if v is not None and predicate(k, v) else None, changes
    )


def _table_map_values(node: TableMapValuesNode, forward: Push, changes: Push | None = None) -> Push:
    mapper = node.mapper
    return _table_update(node, forward, lambda k, v: None if v is None else mapper(v), changes)


def _table_regroup(node: TableRegroupNode, forward: Push) -> Push:
    """A table's changes re-keyed: subtract the old value from its group, add the new one."""
    selector = node.selector

    def push(records: list[Record], ctx: BatchContext) -> None:
        out: list[Record] = []
        for key, (old, new), ts, src in records:
            try:
                moves = []
                if old is not None:
                    moves.append((selector(key, old), (SUBTRACT, old), ts, src))
                if new is not None:
                    moves.append((selector(key, new), (ADD, new), ts, src))
            except Exception as exc:
                ctx.fail(src, exc, node.name)
                continue
            out.extend(moves)
        if out:
            forward(out, ctx)

    return push


def _stream_table_join(node: StreamTableJoinNode, forward: Push) -> Push:
    joiner = node.joiner
    table_name = node.table
    left = node.left

    def push(records: list[Record], ctx: BatchContext) -> None:
        table = ctx.table(table_name)
        out = []
        add = out.append
        for key, value, ts, src in records:
            if key is None or value is None:
                ctx.dropped += 1  # nothing to look up or join (as Kafka Streams)
                continue
            other = table.load(key, _none)
            if other is None and not left:
                continue
            try:
                add((key, joiner(value, other), ts, src))
            except Exception as exc:
                ctx.fail(src, exc, node.name)
        if out:
            forward(out, ctx)

    return push


def _stream_join(node: StreamJoinNode, forward: Push) -> tuple[Push, Push]:
    """The two inputs of a windowed stream-stream join.

    A record joins the other side's records of its key within the window (read from the
    other side's window store and from what this batch stored), is kept in its own side's
    store, and, for left and outer joins, waits in the unmatched store until it is matched
    or its window closes. A partition's stream time is the highest timestamp it has seen;
    a record behind stream time by more than its side's reach forward plus the grace is
    late and dropped. Stored records (and unmatched ones, emitted with ``None`` for the
    missing side) go once stream time passes their time plus the window span plus grace:
    by then no record that could match them can arrive on time.
    """
    windows = node.windows
    joiner = node.joiner
    grace = windows.grace_ms
    expire_after = windows.span_ms + grace
    stream_time: dict[int, int] = {}
    # Window stores are swept for expired records every so much stream time.
    sweep_every = max(expire_after, 1000)
    next_sweep: dict[tuple[int, bool], int] = {}
    unmatched_store = node.unmatched.store if node.unmatched is not None else None

    def side(this_is_left: bool) -> Push:
        this_store = node.left.store if this_is_left else node.right.store
        other_store = node.right.store if this_is_left else node.left.store
        this_side, other_side = ("L", "R") if this_is_left else ("R", "L")
        # Other-side records within [t - back, t + ahead] join a record at t.
        back, ahead = (
            (windows.before_ms, windows.after_ms)
            if this_is_left
            else (windows.after_ms, windows.before_ms)
        )
        keeps_unmatched = node.how == "outer" or (node.how == "left" and this_is_left)
        other_keeps_unmatched = node.how == "outer" or (node.how == "left" and not this_is_left)
        encode_key = node.left.key_codec.inner.encode  # type: ignore[attr-defined]

        def matches(
            other: TableBatch, pending: dict, key: Any, low: int, high: int
        ) -> list[tuple[int, Any]]:
            raw = encode_key(key)
            found: dict[int, list[Any]] = {
                stored_key[1]: values
                for stored_key, values in other.scan_stored(
                    raw + time_bytes(low), raw + time_bytes(high + 1)
                )
                if stored_key[0] == key
            }
            for timestamp, values in pending.get(key, {}).items():
                if low <= timestamp <= high:
                    found[timestamp] = values
            return [(t, v) for t in sorted(found) for v in found[t]]

        def push(records: list[Record], ctx: BatchContext) -> None:
            partition = ctx.partition
            this, other = ctx.table(this_store), ctx.table(other_store)
            unmatched = ctx.table(unmatched_store) if unmatched_store else None
            # key -> timestamp -> values this batch stored, per side
            pending = ctx.scratch.setdefault(node.name, {"L": {}, "R": {}})
            if partition not in stream_time:
                stream_time[partition] = _latest_join_time(this, other)
            now = ctx.scratch.get((node.name, "now"), stream_time[partition])
            out: list[Record] = []
            for key, value, ts, src in records:
                if key is None or value is None:
                    ctx.dropped += 1  # nothing to join (as Kafka Streams)
                    continue
                if ts > now:
                    now = ts
                    if unmatched is not None:  # windows this record closed come first
                        out.extend(
                            _expired_unmatched(
                                unmatched, now - expire_after, joiner, src, ctx, node.name
                            )
                        )
                if ts + ahead + grace < now:
                    ctx.dropped += 1  # late: its window has closed
                    continue
                found = matches(other, pending[other_side], key, ts - back, ts + ahead)
                try:
                    joined = [
                        (joiner(value, v) if this_is_left else joiner(v, value), max(ts, t))
                        for t, v in found
                    ]
                except Exception as exc:
                    ctx.fail(src, exc, node.name)
                    continue
                out.extend((key, result, t, src) for result, t in joined)
                if other_keeps_unmatched and unmatched is not None:
                    for t in {t for t, _ in found}:
                        unmatched_key = (t, other_side, key)
                        if unmatched.load(unmatched_key, _none) is not None:
                            unmatched.updated[unmatched_key] = DELETED
                stored = [*this.load((key, ts), list), value]
                this.updated[(key, ts)] = stored
                pending[this_side].setdefault(key, {})[ts] = stored
                if keeps_unmatched and not found and unmatched is not None:
                    unmatched_key = (ts, this_side, key)
                    unmatched.updated[unmatched_key] = [
                        *unmatched.load(unmatched_key, list),
                        (this_side, value),
                    ]
            ctx.scratch[(node.name, "now")] = now
            sweep_key = (partition, this_is_left)
            if now >= next_sweep.setdefault(sweep_key, now + sweep_every):
                sweep_timed_store(this, pending[this_side], now - expire_after)
                ctx.after_write.append(lambda: next_sweep.__setitem__(sweep_key, now + sweep_every))
            ctx.after_write.append(lambda: stream_time.__setitem__(partition, now))
            if out:
                forward(out, ctx)

        return push

    return side(True), side(False)


def _latest_join_time(*stores: TableBatch) -> int:
    """The latest record time in a join's window stores (a restarted partition's stream time)."""
    latest = -(1 << 62)
    for store in stores:
        for raw in store.stored_keys():
            latest = max(latest, int.from_bytes(raw[-8:], "big") - (1 << 63))
    return latest


def _expired_unmatched(
    unmatched: TableBatch,
    before: int,
    joiner: Callable[[Any, Any], Any],
    src: int,
    ctx: BatchContext,
    step: str = "join",
) -> list[Record]:
    """Left/outer results of the unmatched records timed before ``before``; they are removed.

    The records were consumed by earlier batches, so a joiner that raises on one cannot
    dead-letter it: the result is left out, logged and counted as dropped.
    """
    expired = {k: v for k, v in unmatched.scan_stored(b"", time_bytes(before))}
    for key, values in unmatched.updated.items():
        if values is not DELETED and key[0] < before:
            expired[key] = values
    out: list[Record] = []
    for (timestamp, side, key), values in sorted(expired.items(), key=lambda item: item[0][0]):
        for _, value in values:
            try:
                result = joiner(value, None) if side == "L" else joiner(None, value)
            except Exception as exc:
                log.warning(
                    "Step %s dropped the unmatched record of key %r at %d: the joiner raised "
                    "%s: %s",
                    step,
                    key,
                    timestamp,
                    type(exc).__name__,
                    exc,
                )
                ctx.dropped += 1
                continue
            out.append((key, result, timestamp, src))
        unmatched.updated[(timestamp, side, key)] = DELETED
    return out


def _global_table_join(node: GlobalTableJoinNode, forward: Push) -> Push:
    selector = node.key_selector
    joiner = node.joiner
    left = node.left

    def push(records: list[Record], ctx: BatchContext) -> None:
        table = ctx.global_table(node.table)
        out = []
        add = out.append
        for key, value, ts, src in records:
            if value is None:
                ctx.dropped += 1
                continue
            try:
                lookup = selector(key, value)
                other = None if lookup is None else table.get(lookup)
                if other is None and not left:
                    continue
                add((key, joiner(value, other), ts, src))
            except Exception as exc:
                ctx.fail(src, exc, node.name)
        if out:
            forward(out, ctx)

    return push


_JOIN_PRESENT = {
    "inner": lambda left, right: left is not None and right is not None,
    "left": lambda left, right: left is not None,
    "outer": lambda left, right: left is not None or right is not None,
}


def _table_join(
    node: TableJoinNode, forward: Push, changes: Push | None = None
) -> tuple[Push, Push]:
    """The two inputs of a table-table join: an update of one side reads the other."""
    present = _JOIN_PRESENT[node.how]
    joiner = node.joiner

    def side(this_is_left: bool) -> Push:
        other_store = node.right_store if this_is_left else node.left_store

        def derive_from(other: TableBatch) -> Callable[[Any, Any], Any]:
            def derive(key: Any, value: Any) -> Any:
                other_value = other.load(key, _none)
                left, right = (value, other_value) if this_is_left else (other_value, value)
                return joiner(left, right) if present(left, right) else None

            return derive

        def push(records: list[Record], ctx: BatchContext) -> None:
            update = _table_update(node, forward, derive_from(ctx.table(other_store)), changes)
            update(records, ctx)

        return push

    return side(True), side(False)


def _fk_subscribe(node: ForeignKeySubscribeNode, to_registry: Push, to_join: Push) -> Push:
    """A left row's changes as subscriptions to the right partition of its foreign key."""
    extract = node.foreign_key
    codec = node.value_codec

    def push(records: list[Record], ctx: BatchContext) -> None:
        partition = ctx.partition
        subscriptions: list[Record] = []
        local: list[Record] = []
        for key, (old, new), ts, src in records:
            try:
                old_fk = None if old is None else extract(old)
                new_fk = None if new is None else extract(new)
                digest = value_hash(codec, new)
            except Exception as exc:
                ctx.fail(src, exc, node.name)
                continue
            if old_fk is not None and old_fk != new_fk:
                subscriptions.append((old_fk, (UNSUBSCRIBE, key, b"", partition), ts, src))
            if new_fk is None:
                local.append((key, (digest, None), ts, src))
            else:
                subscriptions.append((new_fk, (SUBSCRIBE, key, digest, partition), ts, src))
        if subscriptions:
            to_registry(subscriptions, ctx)
        if local:
            to_join(local, ctx)

    return push


def _fk_pending(ctx: BatchContext, store: str) -> dict[Any, dict[Any, Any]]:
    """Subscriptions this batch changed, by foreign key:
    ``{fk: {left_key: (hash, partition) or DELETED}}``."""
    return ctx.scratch.setdefault((store, "by-foreign-key"), {})


def _fk_subscriptions(node: ForeignKeySubscriptionNode, forward: Push, changes: Any = None) -> Push:
    """Keeps a foreign-key join's subscriptions and answers each with the right value.

    Answers go to the left row's partition: ``(key, (partition, (hash, right_value)))``
    for a routed sink.
    """
    store = node.store

    def push(records: list[Record], ctx: BatchContext) -> None:
        subscriptions = ctx.table(store)
        right = ctx.table(node.right_store)
        pending = _fk_pending(ctx, store)
        out: list[Record] = []
        for foreign_key, (op, key, digest, partition), ts, src in records:
            stored_key = (foreign_key, key)
            if op == UNSUBSCRIBE:
                if subscriptions.load(stored_key, _none) is not None:
                    subscriptions.updated[stored_key] = DELETED
                    pending.setdefault(foreign_key, {})[key] = DELETED
                continue
            subscription = (digest, partition)
            subscriptions.updated[stored_key] = subscription
            pending.setdefault(foreign_key, {})[key] = subscription
            answer = (digest, right.load(foreign_key, _none))
            out.append((key, (partition, answer), ts, src))
        if out:
            forward(out, ctx)

    return push


def _fk_lookup(node: ForeignKeyLookupNode, forward: Push) -> Push:
    """Sends each update of a right row to the left rows subscribed to it."""
    store = node.subscription_store
    prefix_of = node.subscription_key_codec.prefix

    def push(records: list[Record], ctx: BatchContext) -> None:
        subscriptions = ctx.table(store)
        pending = _fk_pending(ctx, store)
        out: list[Record] = []
        for foreign_key, value, ts, src in records:
            prefix = prefix_of(foreign_key)
            subscribers = {
                key: subscription
                for (_, key), subscription in subscriptions.scan_stored(prefix, prefix_end(prefix))
            }
            subscribers.update(pending.get(foreign_key, {}))
            out.extend(
                (key, (subscription[1], (subscription[0], value)), ts, src)
                for key, subscription in subscribers.items()
                if subscription is not DELETED
            )
        if out:
            forward(out, ctx)

    return push


def _fk_join(node: ForeignKeyJoinNode, forward: Push, changes: Push | None = None) -> Push:
    """A foreign-key join's result: answers for the left row's current value update it."""
    present = _JOIN_PRESENT[node.how]
    joiner = node.joiner
    codec = node.left_value_codec

    def derive(key: Any, pair: tuple[Any, Any]) -> Any:
        left, right = pair
        return joiner(left, right) if present(left, right) else None

    update = _table_update(node, forward, derive, changes)

    def push(records: list[Record], ctx: BatchContext) -> None:
        left_table = ctx.table(node.left_store)
        current: list[Record] = []
        for key, (digest, right), ts, src in records:
            left = left_table.load(key, _none)
            if value_hash(codec, left) == digest:  # else: the answer to an older row value
                current.append((key, (left, right), ts, src))
        if current:
            update(current, ctx)

    return push


_COMPILERS: dict[type, Callable[[Any, Push], Push]] = {
    AgentNode: compile_agent,
    SourceNode: _source,
    FilterNode: _filter,
    MapValuesNode: _map_values,
    MapNode: _map,
    SelectKeyNode: _select_key,
    FlatMapValuesNode: _flat_map_values,
    PeekNode: _peek,
    SinkNode: _sink,
    AggregateNode: _aggregate,
    FlatMapNode: _flat_map,
    MergeNode: _pass,
    BranchOutputNode: _pass,
    TableSourceNode: _table_source,
    TableFilterNode: _table_filter,
    TableMapValuesNode: _table_map_values,
    StreamTableJoinNode: _stream_table_join,
    TableJoinNode: _table_join,
    TableRegroupNode: _table_regroup,
    StreamJoinNode: _stream_join,
    GlobalTableJoinNode: _global_table_join,
    ProcessorNode: compile_processor,
    ForeignKeySubscriptionNode: _fk_subscriptions,
    ForeignKeyLookupNode: _fk_lookup,
    ForeignKeyJoinNode: _fk_join,
}
