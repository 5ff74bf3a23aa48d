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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from streamflow.codecs import Codec, resolve_codec
from streamflow.codecs.windowed import WindowedCodec
from streamflow.dsl.topology import (
    AggregateNode,
    FilterNode,
    FlatMapValuesNode,
    MapNode,
    MapValuesNode,
    Node,
    PeekNode,
    SelectKeyNode,
    SinkNode,
    SourceNode,
    TopologyBuilder,
)
from streamflow.dsl.windows import TimeWindows
from streamflow.topics import Topic

if TYPE_CHECKING:
    from streamflow.app import App

__all__ = ["GroupedStream", "Stream", "Table"]


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

    def __init__(self, app: App, node: Node, key_codec: Codec, value_codec: Codec) -> None:
        self._app = app
        self._node = node
        self._key_codec = key_codec
        self._value_codec = value_codec

    @property
    def _builder(self) -> TopologyBuilder:
        return self._app.builder

    def _child(
        self,
        node: Node,
        name: str | None,
        key_codec: Codec | None = None,
        value_codec: Codec | None = None,
    ) -> Stream:
        self._builder.add(node, parent=self._node, name=name)
        return Stream(
            self._app, node, key_codec or self._key_codec, value_codec or self._value_codec
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
        return self._child(MapNode(mapper=mapper), name)

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
        return self._child(SelectKeyNode(selector=selector), name)

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
        app = self._app
        topic = Topic(
            f"{app.id}-{name}-repartition",
            key=resolve_codec(key) if key is not None else self._key_codec,
            value=resolve_codec(value) if value is not None else self._value_codec,
            internal=True,
        )
        self._builder.add(SinkNode(topic=topic, internal=True), parent=self._node)
        source = SourceNode(topic=topic, internal=True)
        self._builder.add(source, name=f"{name}-source")
        return GroupedStream(app, source, topic.key_codec, topic.value_codec)


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
        windows: TimeWindows | None = None,
    ) -> None:
        self._app = app
        self._node = node
        self._key_codec = key_codec
        self._value_codec = value_codec
        self._windows = windows

    def windowed_by(self, windows: TimeWindows) -> GroupedStream:
        """Aggregate per key *and time window*: the table's keys become ``Windowed``.

        ``windows`` is :func:`~streamflow.dsl.windows.tumbling` or
        :func:`~streamflow.dsl.windows.hopping`; records are placed by their timestamp.
        Table views answer a key with one entry per window. The table's updates
        (``to_stream()``) have ``Windowed(key, start, end)`` keys: map them to the key
        type of a topic before ``to(topic)``. Windows older than their ``retention`` are
        deleted from the table and its changelog.

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
        """
        if not isinstance(windows, TimeWindows):
            raise TypeError("windowed_by needs tumbling(...) or hopping(...) windows")
        return GroupedStream(self._app, self._node, self._key_codec, self._value_codec, windows)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        *,
        name: str,
        value: Codec | str = "json",
    ) -> Table:
        """Fold each key's records into a table: ``aggregator(key, value, aggregate)``.

        ``initializer()`` gives the aggregate of a key seen for the first time. The table
        is stored in RocksDB as ``name`` with the compacted changelog topic
        ``<app-id>-<name>-changelog``; ``value`` is the codec of the aggregate there.

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
        key_codec = self._key_codec
        if self._windows is not None:
            key_codec = WindowedCodec(key_codec, self._windows.size_ms)
        node = AggregateNode(
            store=name,
            initializer=initializer,
            aggregator=aggregator,
            key_codec=key_codec,
            value_codec=resolve_codec(value),
            windows=self._windows,
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
            lambda: first, aggregator, name=name, value=value or self._value_codec
        )

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
        return self.aggregate(lambda: 0, lambda key, value, n: n + 1, name=name, value="int")


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

    def __init__(self, app: App, node: AggregateNode, key_codec: Codec, value_codec: Codec) -> None:
        self._app = app
        self._node = node
        self.key_codec = key_codec
        self.value_codec = value_codec

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
        return Stream(self._app, self._node, self.key_codec, self.value_codec)

    def __repr__(self) -> str:
        return f"Table({self.name!r})"


def _maybe_codec(codec: Codec | str | None) -> Codec | None:
    return None if codec is None else resolve_codec(codec)
