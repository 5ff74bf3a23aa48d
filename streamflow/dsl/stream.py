"""The fluent DSL: :class:`Stream`, :class:`GroupedStream` and :class:`Table`.

Names and semantics follow the Kafka Streams DSL (``KStream``, ``KGroupedStream``,
``KTable``): operators are small, return a new immutable object, and add one node to the
app's plan. Nothing runs until a worker starts the app (or a
:class:`~streamflow.testing.TestDriver` runs it in memory, as the examples here do).

Example (the user-spending job):
    >>> from decimal import Decimal
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("shop")
    >>> orders = app.topic("orders", value="json")
    >>> totals = (
    ...     app.stream(orders)
    ...     .filter(lambda order_id, order: order["status"] == "PAID")
    ...     .group_by(lambda order_id, order: order["user_id"])
    ...     .aggregate(lambda: Decimal("0"),
    ...                lambda user, order, total: total + Decimal(order["amount"]),
    ...                name="user-spending-store", value="decimal")
    ... )
    >>> totals.to_stream().map_values(str).to(app.topic("user_spending_summary", value="str"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("orders", "o1", {"user_id": "u1", "status": "PAID", "amount": "2.50"})
    ...     driver.pipe("orders", "o2", {"user_id": "u1", "status": "NEW", "amount": "9.00"})
    ...     driver.pipe("orders", "o3", {"user_id": "u1", "status": "PAID", "amount": "1.25"})
    ...     driver.read("user_spending_summary")
    [('u1', '2.50'), ('u1', '3.75')]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from streamflow.codecs import Codec, resolve_codec
from streamflow.codecs.change import ADD, ChangeCodec
from streamflow.codecs.join import JoinKeyCodec, ListCodec, SidedCodec, UnmatchedKeyCodec
from streamflow.codecs.windowed import SessionWindowedCodec, WindowedCodec
from streamflow.dsl.foreign_key import foreign_key_join
from streamflow.dsl.processing import StateStore, add_processor
from streamflow.dsl.topology import (
    AggregateNode,
    BranchNode,
    BranchOutputNode,
    FilterNode,
    FlatMapNode,
    FlatMapValuesNode,
    GlobalTableJoinNode,
    KeyValueStoreNode,
    MapNode,
    MapValuesNode,
    MergeNode,
    Node,
    PeekNode,
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
    TopologyBuilder,
)
from streamflow.dsl.windows import (
    EMIT_STRATEGIES,
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windows,
)
from streamflow.topics import Topic

if TYPE_CHECKING:
    from streamflow.app import App

__all__ = ["GlobalTable", "GroupedStream", "GroupedTable", "Stream", "Table"]


def _require_callable(value: Any, what: str) -> None:
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__}")


class Stream:
    """An unbounded sequence of ``(key, value)`` records, like Kafka Streams' ``KStream``.

    Create one with :meth:`streamflow.App.stream`; every operator returns a new ``Stream``
    and leaves the one it was called on as it was, so one stream can feed several branches.

    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> words = app.stream(app.topic("words", value="str"))
    >>> words.map_values(str.upper).to(app.topic("upper", value="str"))
    >>> words.filter(lambda k, word: len(word) > 2).to(app.topic("long", value="str"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("words", [("k", "hi"), ("k", "there")])
    ...     driver.read("upper"), driver.read("long")
    ([('k', 'HI'), ('k', 'THERE')], [('k', 'there')])
    """

    def __init__(
        self,
        app: App,
        node: Node,
        key_codec: Codec,
        value_codec: Codec,
        *,
        key_changed: bool = False,
        partitions: int | None = None,
    ) -> None:
        self._app = app
        self._node = node
        self._key_codec = key_codec
        self._value_codec = value_codec
        # Partitions of the topic the records were read from (None: the app's default).
        self._partitions = partitions
        # Keys were changed since the records were read: a join or a table on this stream
        # must repartition first, or a key's records could sit in the wrong partition.
        self._key_changed = key_changed

    @property
    def _builder(self) -> TopologyBuilder:
        return self._app.builder

    def _child(
        self,
        node: Node,
        name: str | None,
        key_codec: Codec | None = None,
        value_codec: Codec | None = None,
        *,
        key_changed: bool | None = None,
    ) -> Stream:
        self._builder.add(node, parent=self._node, name=name)
        return Stream(
            self._app,
            node,
            key_codec or self._key_codec,
            value_codec or self._value_codec,
            key_changed=self._key_changed if key_changed is None else key_changed,
            partitions=self._partitions,
        )

    def filter(self, predicate: Callable[[Any, Any], bool], *, name: str | None = None) -> Stream:
        """Keep the records for which ``predicate(key, value)`` is true.

        Stateless, record by record.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> paid = orders.filter(lambda k, v: v["status"] == "PAID")
        >>> paid.to(app.topic("paid", value="json"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("orders", [("o1", {"status": "PAID"}), ("o2", {"status": "NEW"})])
        ...     driver.read("paid")
        [('o1', {'status': 'PAID'})]
        """
        _require_callable(predicate, "filter predicate")
        return self._child(FilterNode(predicate=predicate), name)

    def filter_not(
        self, predicate: Callable[[Any, Any], bool], *, name: str | None = None
    ) -> Stream:
        """Drop the records for which ``predicate(key, value)`` is true.

        The opposite of :meth:`filter`; stateless, record by record.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> live = orders.filter_not(lambda k, v: v["status"] == "CANCELLED")
        >>> live.to(app.topic("live", value="json"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("orders", "o1", {"status": "CANCELLED"})
        ...     driver.pipe("orders", "o2", {"status": "PAID"})
        ...     driver.read("live")
        [('o2', {'status': 'PAID'})]
        """
        _require_callable(predicate, "filter_not predicate")
        return self._child(FilterNode(predicate=lambda k, v: not predicate(k, v)), name)

    def map_values(
        self, mapper: Callable[[Any], Any], *, name: str | None = None, codec: Codec | str = None
    ) -> Stream:
        """Transform each value with ``mapper(value)``; keys (and partitioning) are kept.

        ``codec`` names the new values' codec when they go to a topic or table later;
        by default the topic written to decides.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> amounts = orders.map_values(lambda order: order["amount"])
        >>> amounts.to(app.topic("amounts", value="int"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("orders", [("o1", {"amount": 3}), ("o2", {"amount": 5})])
        ...     driver.read("amounts")
        [('o1', 3), ('o2', 5)]
        """
        _require_callable(mapper, "map_values mapper")
        return self._child(MapValuesNode(mapper=mapper), name, value_codec=_maybe_codec(codec))

    def map(
        self, mapper: Callable[[Any, Any], tuple[Any, Any]], *, name: str | None = None
    ) -> Stream:
        """Transform each record with ``mapper(key, value) -> (new_key, new_value)``.

        Changing keys on a stream that is later grouped triggers a repartition.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> amounts = orders.map(lambda order_id, order: (order["user_id"], order["amount"]))
        >>> amounts.to(app.topic("user-amounts", value="int"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("orders", "o1", {"user_id": "u1", "amount": 3})
        ...     driver.pipe("orders", "o2", {"user_id": "u2", "amount": 5})
        ...     driver.read("user-amounts")
        [('u1', 3), ('u2', 5)]
        """
        _require_callable(mapper, "map mapper")
        return self._child(MapNode(mapper=mapper), name, key_changed=True)

    def select_key(self, selector: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        """Set each record's key to ``selector(key, value)``; the value is kept.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> by_user = orders.select_key(lambda order_id, order: order["user_id"])
        >>> by_user.to(app.topic("orders-by-user", value="json"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("orders", "o1", {"user_id": "u1"})
        ...     driver.read("orders-by-user")
        [('u1', {'user_id': 'u1'})]
        """
        _require_callable(selector, "select_key selector")
        return self._child(SelectKeyNode(selector=selector), name, key_changed=True)

    def flat_map_values(
        self, mapper: Callable[[Any], Iterable[Any]], *, name: str | None = None
    ) -> Stream:
        """Replace each record by one record per item of ``mapper(value)``, same key.

        A record whose ``mapper(value)`` is empty is dropped.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> words = app.stream(app.topic("lines", value="str")).flat_map_values(str.split)
        >>> words.to(app.topic("words", value="str"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("lines", [("l1", "to be or"), ("l2", "")])
        ...     driver.read("words")
        [('l1', 'to'), ('l1', 'be'), ('l1', 'or')]
        """
        _require_callable(mapper, "flat_map_values mapper")
        return self._child(FlatMapValuesNode(mapper=mapper), name)

    def peek(self, action: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        """Call ``action(key, value)`` for each record (logging, metrics) and pass it on.

        What ``action`` returns is ignored; the record goes on unchanged.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> seen = []
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> orders.peek(lambda k, v: seen.append(k)).to(app.topic("audited", value="json"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("orders", [("o1", {"n": 1}), ("o2", {"n": 2})])
        ...     seen, driver.read("audited")
        (['o1', 'o2'], [('o1', {'n': 1}), ('o2', {'n': 2})])
        """
        _require_callable(action, "peek action")
        return self._child(PeekNode(action=action), name)

    def to(self, topic: Topic | str, *, name: str | None = None) -> None:
        """Write every record to ``topic`` with the topic's codecs (a terminal step).

        Inside an exactly-once app the writes commit atomically with the consumed offsets.
        A topic given by name is declared with JSON values (see
        :meth:`streamflow.App.resolve_topic`). Returns ``None``: nothing can follow ``to``.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> app.stream(app.topic("orders", value="json")).to(app.topic("orders-copy", value="json"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("orders", "o1", {"n": 1})
        ...     driver.read("orders-copy")
        [('o1', {'n': 1})]
        """
        target = self._app.resolve_topic(topic)
        self._builder.add(SinkNode(topic=target), parent=self._node, name=name)

    def group_by(
        self,
        selector: Callable[[Any, Any], Any],
        *,
        key: Codec | str = "str",
        value: Codec | str | None = None,
        name: str | None = None,
    ) -> GroupedStream:
        """Re-key records by ``selector(key, value)`` and group them for aggregation.

        Triggers a repartition: records go through the internal topic
        ``<app-id>-<name>-repartition`` so that all records of one new key meet in one
        partition. ``key``/``value`` are the codecs used on that topic (``value`` defaults
        to the codec the stream's values were read with).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> per_user = orders.group_by(lambda k, v: v["user_id"]).count(name="orders-per-user")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("orders", [("o1", {"user_id": "u1"}), ("o2", {"user_id": "u1"})])
        ...     driver.read("demo-group-by-repartition"), driver.table("orders-per-user")["u1"]
        ([('u1', {'user_id': 'u1'}), ('u1', {'user_id': 'u1'})], 2)
        """
        _require_callable(selector, "group_by selector")
        keyed = self._child(SelectKeyNode(selector=selector), None)
        return keyed._repartition(key, value, name or "group-by")

    def group_by_key(
        self,
        *,
        key: Codec | str | None = None,
        value: Codec | str | None = None,
        name: str | None = None,
    ) -> GroupedStream:
        """Group records by their current key (repartitions, since keys may have changed).

        The repartition topic is ``<app-id>-<name>-repartition`` (``name`` defaults to
        ``group-by-key``).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> clicks = app.stream(app.topic("clicks", value="json"))
        >>> per_user = clicks.group_by_key().count(name="clicks-per-user")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("clicks", [("u1", {}), ("u2", {}), ("u1", {})])
        ...     sorted(driver.table("clicks-per-user").items())
        [('u1', 2), ('u2', 1)]
        """
        return self._repartition(key, value, name or "group-by-key")

    def _repartition(
        self, key: Codec | str | None, value: Codec | str | None, name: str
    ) -> GroupedStream:
        stream = self._repartitioned(key, value, name)
        return GroupedStream(self._app, stream._node, stream._key_codec, stream._value_codec)

    def _repartitioned(
        self,
        key: Codec | str | None,
        value: Codec | str | None,
        name: str,
        partitions: int | None = None,
    ) -> Stream:
        """This stream written to and read back from ``<app-id>-<name>-repartition``."""
        app = self._app
        topic = Topic.internal_read_back(
            f"{app.id}-{name}-repartition",
            key=resolve_codec(key) if key is not None else self._key_codec,
            value=resolve_codec(value) if value is not None else self._value_codec,
            partitions=partitions,
        )
        self._builder.add(SinkNode(topic=topic, internal=True), parent=self._node)
        source = SourceNode(topic=topic, internal=True)
        self._builder.add(source, name=f"{name}-source")
        return Stream(app, source, topic.key_codec, topic.value_codec, partitions=partitions)

    def _partitioned_by_key(
        self,
        name: str,
        key: Codec | None = None,
        partitions: int | None = None,
        value: Codec | None = None,
    ) -> Stream:
        """This stream, repartitioned first if its keys were changed since it was read.

        ``key`` and ``partitions`` are those of the side it is joined with (a table's key
        codec and partition count), so that one key lands in the same partition on both.
        """
        if not self._key_changed:
            return self
        cache = self._builder.repartitioned_by_key
        wanted = (
            id(self._node),
            key.name if key is not None else None,
            value.name if value is not None else None,
            partitions,
        )
        stream = cache.get(wanted)
        if stream is None:
            stream = cache[wanted] = self._repartitioned(key, value, name, partitions)
        return stream

    def flat_map(
        self,
        mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
        *,
        name: str | None = None,
    ) -> Stream:
        """Replace each record by the ``(key, value)`` pairs of ``mapper(key, value)``.

        Keys may change: a later join, table or grouping repartitions first.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> lines = app.stream(app.topic("lines", value="str"))
        >>> lines.flat_map(lambda k, line: [(w, 1) for w in line.split()]).to(
        ...     app.topic("words", value="int"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("lines", None, "to be")
        ...     driver.read("words")
        [('to', 1), ('be', 1)]
        """
        _require_callable(mapper, "flat_map mapper")
        return self._child(FlatMapNode(mapper=mapper), name, key_changed=True)

    def merge(self, other: Stream, *, name: str | None = None) -> Stream:
        """One stream of the records of both streams (no order between them).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> web = app.stream(app.topic("web-orders"))
        >>> shop = app.stream(app.topic("shop-orders"))
        >>> web.merge(shop).to(app.topic("orders"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("web-orders", "o1", {"n": 1})
        ...     driver.pipe("shop-orders", "o2", {"n": 2})
        ...     driver.read("orders")
        [('o1', {'n': 1}), ('o2', {'n': 2})]
        """
        if not isinstance(other, Stream):
            raise TypeError(f"merge needs a Stream, got {type(other).__name__}")
        node = MergeNode()
        self._builder.add(node, parent=self._node, name=name)
        other._node.children.append(node)
        return Stream(
            self._app,
            node,
            self._key_codec,
            self._value_codec,
            key_changed=self._key_changed or other._key_changed,
            partitions=self._partitions if self._partitions == other._partitions else None,
        )

    def branch(
        self,
        *predicates: Callable[[Any, Any], bool],
        default: bool = False,
        name: str | None = None,
    ) -> list[Stream]:
        """Split the stream: each record goes to the first branch whose predicate holds.

        Returns one stream per predicate, plus a last one for the records no predicate took
        when ``default=True`` (otherwise those are dropped).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders"))
        >>> big, small, other = orders.branch(
        ...     lambda k, o: o["amount"] >= 100, lambda k, o: o["amount"] > 0, default=True)
        >>> big.to(app.topic("big")); small.to(app.topic("small")); other.to(app.topic("zero"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("orders", [("a", {"amount": 500}), ("b", {"amount": 5}),
        ...                                 ("c", {"amount": 0})])
        ...     driver.read("big"), driver.read("small"), driver.read("zero")
        ([('a', {'amount': 500})], [('b', {'amount': 5})], [('c', {'amount': 0})])
        """
        if not predicates:
            raise ValueError("branch needs at least one predicate")
        for predicate in predicates:
            _require_callable(predicate, "branch predicate")
        node = BranchNode(predicates=list(predicates), default=default)
        self._builder.add(node, parent=self._node, name=name)
        branches = []
        for index in range(len(predicates) + (1 if default else 0)):
            output = BranchOutputNode()
            self._builder.add(output, parent=node, name=f"{node.name}-{index}")
            branches.append(
                Stream(
                    self._app,
                    output,
                    self._key_codec,
                    self._value_codec,
                    key_changed=self._key_changed,
                    partitions=self._partitions,
                )
            )
        return branches

    def process(
        self,
        fn: Callable[[Any, Any, Any], Any],
        *,
        stores: Sequence[StateStore] = (),
        on_timer: Callable[[Any, Any, Any], Any] | None = None,
        name: str | None = None,
        key: Codec | str | None = None,
        value: Codec | str | None = None,
        timer_value: Codec | str = "json",
    ) -> Stream:
        """Run ``fn(ctx, key, value)`` for each record: the processor API.

        ``fn`` reads and writes the ``stores`` (declared with ``app.table_store``) through
        ``ctx.store(name)``, sends records on with ``ctx.forward(key, value)`` (none, one or
        many), sees ``ctx.timestamp`` and ``ctx.headers``, and sets per-key timers with
        ``ctx.schedule(key, at_ms, payload, clock="event" or "wall")`` /
        ``ctx.cancel(key)``; a timer fires once, through ``on_timer(ctx, key, payload)``,
        when the partition's stream time (or the wall clock) reaches it (see
        :mod:`streamflow.runtime.processor_api`). All of it commits
        with the record's offset. ``key``/``value`` are the codecs of the forwarded records
        (default: this stream's), ``timer_value`` the codec of timer payloads.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("payments")
        >>> def track(ctx, order_id, event):
        ...     if event["status"] == "CREATED":
        ...         ctx.schedule(order_id, ctx.timestamp + 30 * 60_000, event["user"])
        ...     elif event["status"] == "PAID":
        ...         ctx.cancel(order_id)
        >>> def timeout(ctx, order_id, user):
        ...     ctx.forward(order_id, {"status": "CANCELLED", "user": user})
        >>> events = app.stream(app.topic("order-events", partitions=1))
        >>> events.process(track, on_timer=timeout).to(app.topic("cancellations"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("order-events", "o1", {"status": "CREATED", "user": "u1"}, timestamp=0)
        ...     driver.pipe("order-events", "o2", {"status": "CREATED", "user": "u2"}, timestamp=1)
        ...     driver.pipe("order-events", "o2", {"status": "PAID"}, timestamp=60_000)
        ...     driver.pipe("order-events", "o3", {"status": "CREATED", "user": "u3"},
        ...                 timestamp=31 * 60_000)
        ...     driver.read("cancellations")
        [('o1', {'status': 'CANCELLED', 'user': 'u1'})]
        """
        _require_callable(fn, "processor function")
        if on_timer is not None:
            _require_callable(on_timer, "on_timer callback")
        return add_processor(
            self,
            fn,
            stores=list(stores),
            on_timer=on_timer,
            name=name,
            key=_maybe_codec(key),
            value=_maybe_codec(value),
            timer_value=resolve_codec(timer_value),
        )

    def transform(
        self,
        fn: Callable[[Any, Any, Any], Any],
        *,
        stores: Sequence[StateStore] = (),
        on_timer: Callable[[Any, Any, Any], Any] | None = None,
        name: str | None = None,
        key: Codec | str | None = None,
        value: Codec | str | None = None,
        timer_value: Codec | str = "json",
    ) -> Stream:
        """:meth:`process` for functions that return what they send on.

        ``fn(ctx, key, value)`` returns ``None`` (nothing), a ``(key, value)`` pair, or a
        list of pairs; ``on_timer`` too. Everything else is as for :meth:`process`.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("words")
        >>> seen = app.table_store("seen", value="int", default=int)
        >>> def first_time(ctx, word, _):
        ...     ctx.store("seen")[word] += 1
        ...     return (word, "new") if ctx.store("seen")[word] == 1 else None
        >>> app.stream(app.topic("words", partitions=1)).transform(
        ...     first_time, stores=[seen]).to(app.topic("new-words", value="str"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("words", [("a", {}), ("b", {}), ("a", {})])
        ...     driver.read("new-words")
        [('a', 'new'), ('b', 'new')]
        """
        _require_callable(fn, "transform function")
        return self.process(
            _forwarding(fn),
            stores=stores,
            on_timer=None if on_timer is None else _forwarding(on_timer),
            name=name or self._builder.unique_name(f"transform-{getattr(fn, '__name__', 'fn')}"),
            key=key,
            value=value,
            timer_value=timer_value,
        )

    def to_table(
        self,
        *,
        name: str,
        key: Codec | str | None = None,
        value: Codec | str | None = None,
    ) -> Table:
        """The latest value of each key as a table; a ``None`` value (tombstone) deletes it.

        The table is stored in RocksDB as ``name`` with the changelog
        ``<app-id>-<name>-changelog`` and is queryable like every table. ``key``/``value``
        are its codecs (by default the stream's). A stream whose keys were changed is
        repartitioned first.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> prices = app.stream(app.topic("prices", value="int")).to_table(name="price")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("prices", [("apple", 3), ("pear", 2), ("apple", 4)])
        ...     driver.pipe("prices", "pear", None)
        ...     dict(driver.table("price").items())
        {'apple': 4}
        """
        key_codec = resolve_codec(key) if key is not None else self._key_codec
        value_codec = resolve_codec(value) if value is not None else self._value_codec
        stream = self._partitioned_by_key(
            f"{name}-by-key", key_codec, self._partitions, value_codec
        )
        node = TableSourceNode(store=name, key_codec=key_codec, value_codec=value_codec)
        self._builder.add(node, parent=stream._node, name=name)
        return Table(self._app, node, key_codec, node.value_codec, partitions=stream._partitions)

    def join(
        self,
        table: Table | Stream | GlobalTable,
        joiner: Callable[[Any, Any], Any],
        global_joiner: Callable[[Any, Any], Any] | None = None,
        *,
        window: JoinWindows | None = None,
        name: str | None = None,
        value: Codec | str | None = None,
    ) -> Stream:
        """Join each record with the table's value of its key: ``joiner(value, table_value)``.

        With another stream and a ``window``, a windowed stream-stream join instead (see
        :meth:`outer_join` for its rules): ``joiner(value, other_value)`` for each pair of
        records of one key within the window.

        With a :class:`GlobalTable` (``app.global_table(...)``), the second argument is a
        key selector and the third the joiner: ``stream.join(regions, lambda k, order:
        order["region"], joiner)`` looks ``selector(key, value)`` up in the table held in
        full by every worker; no co-partitioning and no repartition are needed.

        The table is read when the record is processed (as Kafka Streams' stream-table
        join); records whose key is not in the table are dropped (see :meth:`left_join`).
        The stream and the table's topic must be co-partitioned; a stream whose keys were
        changed is repartitioned first. ``value`` is the codec of the joined values when
        they are repartitioned later (default JSON).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> customers = app.table_of(app.topic("customers"), name="customers")
        >>> orders = app.stream(app.topic("orders"))
        >>> orders.join(customers, lambda order, customer: {**order, "city": customer["city"]}
        ...             ).to(app.topic("enriched"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("customers", "c1", {"city": "Oslo"})
        ...     driver.pipe("orders", "c1", {"order": "o1"})
        ...     driver.pipe("orders", "c2", {"order": "o2"})  # no such customer: dropped
        ...     driver.read("enriched")
        [('c1', {'order': 'o1', 'city': 'Oslo'})]
        """
        if isinstance(table, GlobalTable):
            return self._join_global(table, joiner, global_joiner, name, value, left=False)
        if isinstance(table, Stream):
            return self._join_stream(table, joiner, window, name, value, "inner")
        return self._join_table(table, joiner, name, value, left=False)

    def left_join(
        self,
        table: Table | Stream | GlobalTable,
        joiner: Callable[[Any, Any], Any],
        global_joiner: Callable[[Any, Any], Any] | None = None,
        *,
        window: JoinWindows | None = None,
        name: str | None = None,
        value: Codec | str | None = None,
    ) -> Stream:
        """Like :meth:`join`, but every record is kept: ``table_value`` is ``None`` if absent.

        With another stream and a ``window``: a left record that no right record matched
        within its window is emitted once, as ``joiner(value, None)``, when the window
        closes (see :meth:`outer_join`).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> names = app.table_of(app.topic("names", value="str"), name="names")
        >>> visits = app.stream(app.topic("visits", value="int"))
        >>> visits.left_join(names, lambda n, who: f"{who or 'someone'} x{n}").to(
        ...     app.topic("greetings", value="str"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("names", "u1", "Ada")
        ...     driver.pipe_many("visits", [("u1", 2), ("u2", 1)])
        ...     driver.read("greetings")
        [('u1', 'Ada x2'), ('u2', 'someone x1')]
        """
        if isinstance(table, GlobalTable):
            return self._join_global(table, joiner, global_joiner, name, value, left=True)
        if isinstance(table, Stream):
            return self._join_stream(table, joiner, window, name, value, "left")
        return self._join_table(table, joiner, name, value, left=True)

    def _join_global(
        self,
        table: GlobalTable,
        key_selector: Callable[[Any, Any], Any],
        joiner: Callable[[Any, Any], Any] | None,
        name: str | None,
        value: Codec | str | None,
        *,
        left: bool,
    ) -> Stream:
        _require_callable(key_selector, "global table key selector")
        if joiner is None:
            raise TypeError(
                "a join with a global table takes a key selector and a joiner: "
                "stream.join(global_table, lambda key, value: lookup_key, joiner)"
            )
        _require_callable(joiner, "joiner")
        node = GlobalTableJoinNode(
            table=table.name, key_selector=key_selector, joiner=joiner, left=left
        )
        return self._child(node, name, value_codec=resolve_codec(value or "json"))

    def outer_join(
        self,
        other: Stream,
        joiner: Callable[[Any, Any], Any],
        *,
        window: JoinWindows,
        name: str | None = None,
        value: Codec | str | None = None,
    ) -> Stream:
        """Join two streams by key within ``window``, keeping unmatched records of both.

        A record at time *t* on this side joins the other side's records of its key timed
        from ``t - window.before`` to ``t + window.after``, whichever arrives first, as
        ``joiner(left_value, right_value)`` timed at the later of the two. A record that
        found no match by the time its window closed (stream time past its time plus
        ``before + after + grace``) is emitted once with ``None`` for the missing side. A
        record later than its window plus ``grace`` is dropped. Both sides are kept in
        RocksDB window stores with changelogs, for as long as they can still match.

        >>> from streamflow import App, JoinWindows
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="str"))
        >>> payments = app.stream(app.topic("payments", value="str"))
        >>> orders.outer_join(payments, lambda o, p: [o, p], window=JoinWindows.of(60)).to(
        ...     app.topic("matched"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("orders", "o1", "order", timestamp=0)
        ...     driver.pipe("payments", "o1", "paid", timestamp=30_000)
        ...     driver.pipe("orders", "o2", "order", timestamp=40_000)
        ...     driver.read("matched")
        [('o1', ['order', 'paid'])]
        >>> with TestDriver(app) as driver:  # o2's window closes after 40 s + 60 s + 60 s
        ...     driver.pipe("orders", "o2", "order", timestamp=40_000)
        ...     driver.pipe("payments", "o2", "late", timestamp=170_000)  # moves stream time
        ...     driver.read("matched")
        [('o2', ['order', None])]

        Stream time is kept per partition, as in Kafka Streams: records of other keys in
        other partitions do not close a key's windows.
        """
        return self._join_stream(other, joiner, window, name, value, "outer")

    def _join_stream(
        self,
        other: Stream,
        joiner: Callable[[Any, Any], Any],
        window: JoinWindows | None,
        name: str | None,
        value: Codec | str | None,
        how: str,
    ) -> Stream:
        if not isinstance(window, JoinWindows):
            raise TypeError(
                "a stream-stream join needs window=JoinWindows(...) (how far apart in time "
                "two records may be), e.g. window=JoinWindows.of(60)"
            )
        _require_callable(joiner, "joiner")
        node = StreamJoinNode(windows=window, joiner=joiner, how=how)
        step = name or f"{how}-join-{self._builder._counter + 1}"
        # Both sides in the partition count of a side that was not re-keyed (if any).
        partitions = self._partitions if not self._key_changed else other._partitions
        # A re-keyed side takes the key codec of a side that was not re-keyed.
        key = other._key_codec if self._key_changed and not other._key_changed else None
        left = self._partitioned_by_key(f"{step}-left-by-key", key, partitions)
        right = other._partitioned_by_key(f"{step}-right-by-key", left._key_codec, partitions)
        node.left_parent, node.right_parent = left._node, right._node
        self._builder.add(node, parent=left._node, name=step)
        right._node.children.append(node)
        keys = JoinKeyCodec(left._key_codec)
        node.left = StoreNode(
            name=f"{step}-left",
            store=f"{step}-left",
            key_codec=keys,
            value_codec=ListCodec(left._value_codec),
        )
        node.right = StoreNode(
            name=f"{step}-right",
            store=f"{step}-right",
            key_codec=keys,
            value_codec=ListCodec(right._value_codec),
        )
        if how != "inner":
            sides = ListCodec(SidedCodec(left._value_codec, right._value_codec))
            node.unmatched = StoreNode(
                name=f"{step}-unmatched",
                store=f"{step}-unmatched",
                key_codec=UnmatchedKeyCodec(left._key_codec),
                value_codec=sides,
            )
        return Stream(self._app, node, left._key_codec, resolve_codec(value or "json"))

    def _join_table(
        self,
        table: Table,
        joiner: Callable[[Any, Any], Any],
        name: str | None,
        value: Codec | str | None,
        *,
        left: bool,
    ) -> Stream:
        if not isinstance(table, Table):
            raise TypeError(f"join needs a Table, got {type(table).__name__}")
        _require_callable(joiner, "joiner")
        if table._node.windows is not None:
            raise TypeError(f"cannot join a stream with the windowed table {table.name!r}")
        node = StreamTableJoinNode(table=table.name, joiner=joiner, left=left)
        step = name or self._builder.unique_name(f"{'left-join' if left else 'join'}-{table.name}")
        stream = self._partitioned_by_key(f"{step}-by-key", table.key_codec, table._partitions)
        self._builder.add(node, parent=stream._node, name=name)
        return Stream(self._app, node, stream._key_codec, resolve_codec(value or "json"))


class GroupedStream:
    """Records grouped by key, ready to aggregate (Kafka Streams' ``KGroupedStream``).

    Get one from :meth:`Stream.group_by` or :meth:`Stream.group_by_key`; :meth:`aggregate`,
    :meth:`reduce` and :meth:`count` turn it into a :class:`Table`.

    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> grouped = app.stream(app.topic("orders", value="json")).group_by(lambda k, v: v["user"])
    >>> counts = grouped.count(name="orders-per-user")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("orders", [("o1", {"user": "u1"}), ("o2", {"user": "u1"})])
    ...     driver.table("orders-per-user")["u1"]
    2
    """

    def __init__(
        self,
        app: App,
        node: Node,
        key_codec: Codec,
        value_codec: Codec,
        windows: Windows | None = None,
    ) -> None:
        self._app = app
        self._node = node
        self._key_codec = key_codec
        self._value_codec = value_codec
        self._windows = windows

    def windowed_by(self, windows: Windows, *, emit: str | None = None) -> GroupedStream:
        """Aggregate per key *and window*: the table's keys become ``Windowed``.

        ``windows`` is :func:`~streamflow.dsl.windows.tumbling`,
        :func:`~streamflow.dsl.windows.hopping`, :func:`~streamflow.dsl.windows.sliding`
        or :func:`~streamflow.dsl.windows.session`; records are placed by their timestamp.
        ``emit`` (``"update"`` or ``"close"``) overrides the windows' own ``emit``:
        with ``"close"`` the table's updates are one final result per window, sent once
        the window closes. Table views answer a key with one entry per window. The
        table's updates (``to_stream()``) have ``Windowed(key, start, end)`` keys: map them
        to the key type of a topic before ``to(topic)``. Windows older than their
        ``retention`` are deleted from the table and its changelog.

        >>> from streamflow import App, Windowed, tumbling
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> clicks = app.stream(app.topic("clicks", value="json"))
        >>> per_minute = clicks.group_by_key().windowed_by(tumbling(60)).count(name="per-minute")
        >>> per_minute.to_stream().map(lambda w, n: (f"{w.key}@{w.start}", n)).to(
        ...     app.topic("minutes", value="int"))
        >>> with TestDriver(app) as driver:
        ...     for timestamp in (1_000, 59_000, 61_000):
        ...         driver.pipe("clicks", "u1", {}, timestamp=timestamp)
        ...     driver.read("minutes"), driver.table("per-minute")[Windowed("u1", 0, 60_000)]
        ([('u1@0', 1), ('u1@0', 2), ('u1@60000', 1)], 2)

        Final results only:

        >>> app = App("demo")
        >>> clicks = app.stream(app.topic("clicks", value="json")).group_by_key()
        >>> final = clicks.windowed_by(tumbling(60), emit="close").count(name="per-minute")
        >>> final.to_stream().map(lambda w, n: (f"{w.key}@{w.start}", n)).to(
        ...     app.topic("minutes", value="int"))
        >>> with TestDriver(app) as driver:
        ...     for timestamp in (1_000, 59_000, 61_000):
        ...         driver.pipe("clicks", "u1", {}, timestamp=timestamp)
        ...     driver.read("minutes")
        [('u1@0', 2)]
        """
        if not isinstance(windows, Windows):
            raise TypeError(
                "windowed_by needs tumbling(...), hopping(...), sliding(...) or session(...) "
                f"windows, got {type(windows).__name__}"
            )
        if emit is not None:
            if emit not in EMIT_STRATEGIES:
                raise ValueError(f"emit must be 'update' or 'close', got {emit!r}")
            windows = dataclasses.replace(windows, emit=emit)
        return GroupedStream(self._app, self._node, self._key_codec, self._value_codec, windows)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        *,
        name: str,
        value: Codec | str = "json",
        merger: Callable[[Any, Any, Any], Any] | None = None,
    ) -> Table:
        """Fold each key's records into a table: ``aggregator(key, value, aggregate)``.

        ``initializer()`` gives the aggregate of a key seen for the first time. The table
        is stored in RocksDB as ``name`` with the compacted changelog topic
        ``<app-id>-<name>-changelog``; ``value`` is the codec of the aggregate there.
        Over session windows ``merger(key, aggregate, other)`` combines the aggregates
        of two sessions a record bridges (required there).

        >>> from decimal import Decimal
        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> totals = (app.stream(app.topic("orders", value="json"))
        ...           .group_by(lambda k, v: v["user_id"])
        ...           .aggregate(lambda: Decimal("0"),
        ...                      lambda user, order, total: total + Decimal(order["amount"]),
        ...                      name="totals", value="decimal"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("orders", "o1", {"user_id": "u1", "amount": "2.50"})
        ...     driver.pipe("orders", "o2", {"user_id": "u1", "amount": "1.25"})
        ...     driver.table("totals")["u1"], driver.read("demo-totals-changelog")
        (Decimal('3.75'), [('u1', Decimal('2.50')), ('u1', Decimal('3.75'))])
        """
        _require_callable(initializer, "aggregate initializer")
        _require_callable(aggregator, "aggregate aggregator")
        windows = self._windows
        if isinstance(windows, SessionWindows):
            if merger is None:
                raise TypeError(
                    f"aggregate {name!r} over session windows needs merger=(key, aggregate, "
                    "other) -> aggregate: a record between two sessions merges them"
                )
            _require_callable(merger, "aggregate merger")
        elif merger is not None:
            raise TypeError("merger= is only used by aggregations over session windows")
        key_codec = self._key_codec
        if isinstance(windows, SessionWindows):
            key_codec = SessionWindowedCodec(key_codec)
        elif isinstance(windows, TimeWindows | SlidingWindows):
            key_codec = WindowedCodec(key_codec, windows.size_ms)
        node = AggregateNode(
            store=name,
            initializer=initializer,
            aggregator=aggregator,
            merger=merger,
            key_codec=key_codec,
            value_codec=resolve_codec(value),
            windows=windows,
        )
        if isinstance(windows, SlidingWindows):
            # Sliding windows are made from the records they hold: kept for size + grace.
            node.buffer = KeyValueStoreNode(
                name=f"{name}-records",
                store=f"{name}-records",
                key_codec=JoinKeyCodec(self._key_codec),
                value_codec=ListCodec(self._value_codec),
            )
        if windows is not None and windows.emits_on_close:
            node.closing = KeyValueStoreNode(
                name=f"{name}-closing",
                store=f"{name}-closing",
                key_codec=resolve_codec("bytes"),
                value_codec=resolve_codec("int"),
            )
        self._app.builder.add(node, parent=self._node, name=name)
        return Table(self._app, node, key_codec, node.value_codec)

    def reduce(
        self, reducer: Callable[[Any, Any], Any], *, name: str, value: Codec | str | None = None
    ) -> Table:
        """Combine each key's values pairwise: ``reducer(aggregate, value)``.

        The first value of a key becomes its aggregate as is; ``value`` (the codec of the
        aggregate) defaults to the codec of the grouped values.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> tags = app.stream(app.topic("tags", value="str")).group_by_key()
        >>> joined = tags.reduce(lambda so_far, tag: f"{so_far},{tag}", name="tags")
        >>> joined.to_stream().to(app.topic("joined-tags", value="str"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("tags", [("a", "red"), ("a", "big"), ("a", "new")])
        ...     driver.read("joined-tags")
        [('a', 'red'), ('a', 'red,big'), ('a', 'red,big,new')]
        """
        _require_callable(reducer, "reduce reducer")
        first = _FIRST

        def aggregator(key: Any, value: Any, aggregate: Any) -> Any:
            return value if aggregate is first else reducer(aggregate, value)

        return self.aggregate(
            lambda: first,
            aggregator,
            name=name,
            value=value or self._value_codec,
            merger=self._merger(lambda key, left, right: reducer(left, right)),
        )

    def _merger(self, merge: Callable[[Any, Any, Any], Any]) -> Any:
        """``merge`` over session windows (where aggregations need one), else ``None``."""
        return merge if isinstance(self._windows, SessionWindows) else None

    def count(self, *, name: str = "count") -> Table:
        """Count records per key into a table of ints.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders", value="json"))
        >>> orders_per_user = orders.group_by(lambda k, v: v["user"]).count(name="orders-per-user")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("orders", [("o1", {"user": "u1"}), ("o2", {"user": "u2"})])
        ...     driver.pipe("orders", "o3", {"user": "u1"})
        ...     sorted(driver.table("orders-per-user").items())
        [('u1', 2), ('u2', 1)]
        """
        return self.aggregate(
            lambda: 0,
            lambda key, value, n: n + 1,
            name=name,
            value="int",
            merger=self._merger(lambda key, left, right: left + right),
        )


class _First:
    """Marks a key a reducer has not seen yet (never stored: a first value replaces it)."""

    def __repr__(self) -> str:
        return "<first>"


_FIRST = _First()


class Table:
    """A changelog-backed table of the latest aggregate per key (Kafka Streams' ``KTable``).

    Query it through the worker's HTTP table views; turn its updates into a stream with
    :meth:`to_stream`. In tests, :meth:`streamflow.testing.TestDriver.table` reads it.

    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> counts = app.stream(app.topic("clicks", value="json")).group_by_key().count()
    >>> counts
    Table('count')
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("clicks", [("u1", {}), ("u1", {})])
    ...     driver.table(counts.name)["u1"], len(driver.table(counts.name))
    (2, 1)
    """

    def __init__(
        self,
        app: App,
        node: StoreNode,
        key_codec: Codec,
        value_codec: Codec,
        *,
        partitions: int | None = None,
    ) -> None:
        self._app = app
        self._node = node
        self.key_codec = key_codec
        self.value_codec = value_codec
        # Partitions of the topic the table is built from (None: the app's default).
        self._partitions = partitions

    def _derived(self, node: StoreNode, name: str | None) -> Table:
        self._app.builder.add(node, parent=self._node, name=name)
        node.store = name or node.name
        return Table(self._app, node, node.key_codec, node.value_codec, partitions=self._partitions)

    def filter(self, predicate: Callable[[Any, Any], bool], *, name: str | None = None) -> Table:
        """A table of the keys whose values pass ``predicate(key, value)``.

        A key whose new value does not pass is deleted from the result (and its deletion,
        ``(key, None)``, goes downstream). The result is a table of its own, stored as
        ``name`` (default: the generated step name).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> stock = app.table_of(app.topic("stock", value="int"), name="stock")
        >>> low = stock.filter(lambda sku, n: n < 5, name="low-stock")
        >>> low.to_stream().to(app.topic("alerts", value="int"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("stock", [("apple", 3), ("pear", 9), ("apple", 7)])
        ...     driver.read("alerts"), dict(driver.table("low-stock").items())
        ([('apple', 3), ('apple', None)], {})
        """
        _require_callable(predicate, "table filter predicate")
        self._check_not_windowed("filter")
        node = TableFilterNode(
            predicate=predicate, key_codec=self.key_codec, value_codec=self.value_codec
        )
        return self._derived(node, name)

    def filter_not(
        self, predicate: Callable[[Any, Any], bool], *, name: str | None = None
    ) -> Table:
        """A table of the keys whose values do not pass ``predicate(key, value)``.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> users = app.table_of(app.topic("users"), name="users")
        >>> active = users.filter_not(lambda k, u: u["banned"], name="active")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("users", [("a", {"banned": False}), ("b", {"banned": True})])
        ...     list(driver.table("active"))
        ['a']
        """
        _require_callable(predicate, "table filter_not predicate")
        return self.filter(lambda k, v: not predicate(k, v), name=name)

    def map_values(
        self,
        mapper: Callable[[Any], Any],
        *,
        name: str | None = None,
        value: Codec | str = "json",
    ) -> Table:
        """A table of ``mapper(value)`` for each key; deletions pass through.

        ``value`` is the codec of the new values (default JSON).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> users = app.table_of(app.topic("users"), name="users")
        >>> emails = users.map_values(lambda u: u["email"], name="emails", value="str")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("users", "a", {"email": "a@example.com"})
        ...     driver.table("emails")["a"]
        'a@example.com'
        """
        _require_callable(mapper, "table map_values mapper")
        self._check_not_windowed("map_values")
        node = TableMapValuesNode(
            mapper=mapper, key_codec=self.key_codec, value_codec=resolve_codec(value)
        )
        return self._derived(node, name)

    def join(
        self,
        other: Table,
        joiner: Callable[[Any, Any], Any],
        *,
        foreign_key: Callable[[Any], Any] | None = None,
        name: str | None = None,
        value: Codec | str = "json",
    ) -> Table:
        """A table of ``joiner(value, other_value)`` for the keys both tables hold.

        Every update on either side emits the new result; a key leaving either side is
        deleted from the result (emitted as ``(key, None)``). Both tables must be
        co-partitioned. The result is stored as ``name``.

        With ``foreign_key``, a row joins the row of ``other`` whose key is
        ``foreign_key(value)`` (a foreign-key join, Kafka Streams' KIP-213): the result is
        keyed like this table, follows a row that changes its foreign key, and the tables
        need not be co-partitioned (see :mod:`streamflow.dsl.foreign_key`). A row whose
        foreign key is ``None`` has no result.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> names = app.table_of(app.topic("names", value="str"), name="names")
        >>> cities = app.table_of(app.topic("cities", value="str"), name="cities")
        >>> names.join(cities, lambda n, c: f"{n} in {c}", name="who-where").to_stream().to(
        ...     app.topic("out", value="str"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("names", "u1", "Ada")
        ...     driver.pipe("cities", "u1", "Oslo")
        ...     driver.pipe("cities", "u1", "Rome")
        ...     driver.pipe("names", "u1", None)
        ...     driver.read("out")
        [('u1', 'Ada in Oslo'), ('u1', 'Ada in Rome'), ('u1', None)]
        """
        return self._join(other, joiner, name, value, "inner", foreign_key)

    def left_join(
        self,
        other: Table,
        joiner: Callable[[Any, Any], Any],
        *,
        foreign_key: Callable[[Any], Any] | None = None,
        name: str | None = None,
        value: Codec | str = "json",
    ) -> Table:
        """Like :meth:`join`, for every key of this table (``other_value`` may be ``None``).

        With ``foreign_key``, a foreign-key left join: a row whose foreign key is ``None``
        or missing from ``other`` joins ``None``.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> names = app.table_of(app.topic("names", value="str"), name="names")
        >>> cities = app.table_of(app.topic("cities", value="str"), name="cities")
        >>> lj = names.left_join(cities, lambda n, c: [n, c], name="lj")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("names", "u1", "Ada")
        ...     driver.pipe("cities", "u2", "Oslo")
        ...     dict(driver.table("lj").items())
        {'u1': ['Ada', None]}
        """
        return self._join(other, joiner, name, value, "left", foreign_key)

    def outer_join(
        self,
        other: Table,
        joiner: Callable[[Any, Any], Any],
        *,
        foreign_key: Callable[[Any], Any] | None = None,
        name: str | None = None,
        value: Codec | str = "json",
    ) -> Table:
        """Like :meth:`join`, for every key of either table (the missing side is ``None``).

        There is no foreign-key outer join (``foreign_key`` is refused, with why).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> names = app.table_of(app.topic("names", value="str"), name="names")
        >>> cities = app.table_of(app.topic("cities", value="str"), name="cities")
        >>> oj = names.outer_join(cities, lambda n, c: [n, c], name="oj")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("names", "u1", "Ada")
        ...     driver.pipe("cities", "u2", "Oslo")
        ...     sorted(driver.table("oj").items())
        [('u1', ['Ada', None]), ('u2', [None, 'Oslo'])]
        """
        return self._join(other, joiner, name, value, "outer", foreign_key)

    def _join(
        self,
        other: Table,
        joiner: Callable[[Any, Any], Any],
        name: str | None,
        value: Codec | str,
        how: str,
        foreign_key: Callable[[Any], Any] | None = None,
    ) -> Table:
        if not isinstance(other, Table):
            raise TypeError(f"a table joins a Table, got {type(other).__name__}")
        _require_callable(joiner, "joiner")
        self._check_not_windowed("join")
        other._check_not_windowed("join")
        if foreign_key is not None:
            _require_callable(foreign_key, "foreign_key extractor")
            node = foreign_key_join(
                self,
                other,
                joiner,
                foreign_key,
                how=how,
                name=name,
                value_codec=resolve_codec(value),
            )
            return Table(
                self._app, node, node.key_codec, node.value_codec, partitions=self._partitions
            )
        node = TableJoinNode(
            left_parent=self._node,
            right_parent=other._node,
            left_store=self.name,
            right_store=other.name,
            joiner=joiner,
            how=how,
            key_codec=self.key_codec,
            value_codec=resolve_codec(value),
        )
        table = self._derived(node, name)
        other._node.children.append(node)
        return table

    def group_by(
        self,
        selector: Callable[[Any, Any], Any],
        *,
        key: Codec | str = "str",
        value: Codec | str | None = None,
        name: str | None = None,
    ) -> GroupedTable:
        """Re-group the table's rows by ``selector(key, value)`` to aggregate them again.

        Unlike a grouped stream, a row that changes is *moved*: its old value is
        subtracted from the aggregate of its old group and the new value added to its new
        group (Kafka Streams' ``KGroupedTable``). Triggers a repartition through
        ``<app-id>-<name>-repartition``; ``key``/``value`` are the codecs used there (the
        value's default: the table's).

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> users = app.table_of(app.topic("users"), name="users")
        >>> per_city = users.group_by(lambda user, u: u["city"]).count(name="users-per-city")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("users", [("a", {"city": "Oslo"}), ("b", {"city": "Oslo"})])
        ...     driver.pipe("users", "a", {"city": "Rome"})  # moves: Oslo 1, Rome 1
        ...     driver.pipe("users", "b", None)  # deleted: Oslo 0
        ...     sorted(driver.table("users-per-city").items())
        [('Oslo', 0), ('Rome', 1)]
        """
        _require_callable(selector, "table group_by selector")
        self._check_not_windowed("group_by")
        builder = self._app.builder
        regroup = TableRegroupNode(selector=selector)
        builder.add(regroup, parent=self._node)
        name = name or f"{self.name}-group-by"
        value_codec = resolve_codec(value) if value is not None else self.value_codec
        topic = Topic.internal_read_back(
            f"{self._app.id}-{name}-repartition",
            key=resolve_codec(key),
            value=ChangeCodec(value_codec),
        )
        builder.add(SinkNode(topic=topic, internal=True), parent=regroup)
        source = SourceNode(topic=topic, internal=True)
        builder.add(source, name=f"{name}-source")
        return GroupedTable(self._app, source, topic.key_codec, value_codec)

    def _check_not_windowed(self, operation: str) -> None:
        if self._node.windows is not None:
            raise TypeError(f"{operation} is not supported on the windowed table {self.name!r}")

    @property
    def name(self) -> str:
        """The table's store name (also its HTTP view name)."""
        return self._node.store

    def to_stream(self) -> Stream:
        """Every update of the table as a stream of ``(key, new_value)`` records.

        With the default settings each input record that changes the table emits one update.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> counts = app.stream(app.topic("clicks", value="json")).group_by_key().count()
        >>> counts.to_stream().map_values(str).to(app.topic("counts", value="str"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("clicks", [("u1", {}), ("u1", {}), ("u2", {})])
        ...     driver.read("counts")
        [('u1', '1'), ('u1', '2'), ('u2', '1')]
        """
        return Stream(
            self._app, self._node, self.key_codec, self.value_codec, partitions=self._partitions
        )

    def __repr__(self) -> str:
        return f"Table({self.name!r})"


class GlobalTable:
    """A topic's latest value per key, replicated in full on every worker.

    Declared with :meth:`streamflow.App.global_table`; joined by any key derived from a
    record (``stream.join(global_table, key_selector, joiner)``). Every worker reads all
    partitions of the topic (no consumer group), restores the table before it processes
    anything, and keeps it current.

    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> regions = app.global_table(app.topic("regions", value="str"), name="regions")
    >>> orders = app.stream(app.topic("orders"))
    >>> orders.join(regions, lambda order_id, o: o["region"],
    ...             lambda o, region: {**o, "region_name": region}).to(app.topic("out"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("regions", "eu", "Europe")
    ...     driver.pipe("orders", "o1", {"region": "eu"})
    ...     driver.pipe("orders", "o2", {"region": "us"})  # not in the table: dropped
    ...     driver.read("out")
    [('o1', {'region': 'eu', 'region_name': 'Europe'})]
    """

    def __init__(self, name: str, topic: Topic) -> None:
        self.name = name
        self.topic = topic
        self.key_codec = topic.key_codec
        self.value_codec = topic.value_codec

    def __repr__(self) -> str:
        return f"GlobalTable({self.name!r})"


class GroupedTable:
    """A table's rows grouped by a new key, ready to re-aggregate (``KGroupedTable``).

    Each aggregation takes an ``adder`` for a row joining a group and a ``subtractor`` for
    a row leaving it (its value changed or it was deleted).

    >>> from decimal import Decimal
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> balances = app.table_of(app.topic("balances"), name="balances")
    >>> per_bank = balances.group_by(lambda account, b: b["bank"]).aggregate(
    ...     lambda: Decimal("0"),
    ...     lambda bank, b, total: total + Decimal(b["amount"]),
    ...     lambda bank, b, total: total - Decimal(b["amount"]),
    ...     name="per-bank", value="decimal")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("balances", "acc1", {"bank": "x", "amount": "10"})
    ...     driver.pipe("balances", "acc2", {"bank": "x", "amount": "5"})
    ...     driver.pipe("balances", "acc1", {"bank": "x", "amount": "7"})
    ...     driver.table("per-bank")["x"]
    Decimal('12')
    """

    def __init__(self, app: App, node: Node, key_codec: Codec, value_codec: Codec) -> None:
        self._app = app
        self._node = node
        self._key_codec = key_codec
        self._value_codec = value_codec

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
        *,
        name: str,
        value: Codec | str = "json",
    ) -> Table:
        """Fold each group's rows into a table: ``adder(key, value, aggregate)`` for a row
        joining the group, ``subtractor(key, value, aggregate)`` for one leaving it.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> stock = app.table_of(app.topic("stock", value="json"), name="stock")
        >>> per_shop = stock.group_by(lambda sku, s: s["shop"]).aggregate(
        ...     lambda: 0, lambda shop, s, n: n + s["n"], lambda shop, s, n: n - s["n"],
        ...     name="per-shop", value="int")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("stock", "apple", {"shop": "north", "n": 3})
        ...     driver.pipe("stock", "apple", {"shop": "south", "n": 2})
        ...     sorted(driver.table("per-shop").items())
        [('north', 0), ('south', 2)]
        """
        _require_callable(initializer, "aggregate initializer")
        _require_callable(adder, "aggregate adder")
        _require_callable(subtractor, "aggregate subtractor")

        def aggregator(key: Any, change: tuple[str, Any], aggregate: Any) -> Any:
            sign, row = change
            return adder(key, row, aggregate) if sign == ADD else subtractor(key, row, aggregate)

        node = AggregateNode(
            store=name,
            initializer=initializer,
            aggregator=aggregator,
            key_codec=self._key_codec,
            value_codec=resolve_codec(value),
        )
        self._app.builder.add(node, parent=self._node, name=name)
        return Table(self._app, node, node.key_codec, node.value_codec)

    def count(self, *, name: str = "count") -> Table:
        """The number of rows in each group.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> users = app.table_of(app.topic("users"), name="users")
        >>> per_plan = users.group_by(lambda k, u: u["plan"]).count(name="per-plan")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("users", [("a", {"plan": "pro"}), ("a", {"plan": "free"})])
        ...     sorted(driver.table("per-plan").items())
        [('free', 1), ('pro', 0)]
        """
        return self.aggregate(
            lambda: 0, lambda k, v, n: n + 1, lambda k, v, n: n - 1, name=name, value="int"
        )

    def reduce(
        self,
        adder: Callable[[Any, Any], Any],
        subtractor: Callable[[Any, Any], Any],
        *,
        name: str,
        value: Codec | str | None = None,
    ) -> Table:
        """Combine each group's rows: ``adder(aggregate, value)``, ``subtractor(aggregate,
        value)``; a group's first row becomes its aggregate as is.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("demo")
        >>> scores = app.table_of(app.topic("scores", value="json"), name="scores")
        >>> total = scores.group_by(lambda player, s: s["team"], value="json").reduce(
        ...     lambda t, s: {"team": s["team"], "points": t["points"] + s["points"]},
        ...     lambda t, s: {"team": s["team"], "points": t["points"] - s["points"]},
        ...     name="team-points")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("scores", [("p1", {"team": "a", "points": 3}),
        ...                                 ("p2", {"team": "a", "points": 4}),
        ...                                 ("p1", {"team": "a", "points": 1})])
        ...     driver.table("team-points")["a"]["points"]
        5
        """
        _require_callable(adder, "reduce adder")
        _require_callable(subtractor, "reduce subtractor")
        first = _FIRST
        return self.aggregate(
            lambda: first,
            lambda k, v, agg: v if agg is first else adder(agg, v),
            lambda k, v, agg: subtractor(agg, v),
            name=name,
            value=value or self._value_codec,
        )


def _maybe_codec(codec: Codec | str | None) -> Codec | None:
    return None if codec is None else resolve_codec(codec)


def _forwarding(fn: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], None]:
    """A processor function forwarding what ``fn`` returns (see :meth:`Stream.transform`).

    >>> class Ctx:
    ...     def __init__(self): self.sent = []
    ...     def forward(self, key, value): self.sent.append((key, value))
    >>> ctx = Ctx()
    >>> _forwarding(lambda c, k, v: [(k, v), (k, v * 2)])(ctx, "k", 2)
    >>> ctx.sent
    [('k', 2), ('k', 4)]
    """

    def forward_returned(ctx: Any, key: Any, value: Any) -> None:
        returned = fn(ctx, key, value)
        if returned is None:
            return
        pairs = [returned] if isinstance(returned, tuple) else returned
        try:
            pairs = list(pairs)
        except TypeError:
            pairs = [returned]
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(
                    f"{getattr(fn, '__name__', 'the transform function')} must return None, "
                    f"a (key, value) pair or a list of pairs, got {returned!r}"
                )
            ctx.forward(*pair)

    forward_returned.__name__ = getattr(fn, "__name__", "fn")
    return forward_returned
