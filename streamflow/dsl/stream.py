"""The fluent DSL: :class:`Stream`, :class:`GroupedStream` and :class:`Table`.

Names and semantics follow the Kafka Streams DSL (``KStream``, ``KGroupedStream``,
``KTable``): operators are small, return a new immutable object, and add one node to the
app's plan. Nothing runs until a worker starts the app.

Example (the user-spending job):
    >>> from decimal import Decimal
    >>> from streamflow import App
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
    >>> _ = totals.to_stream().map_values(str).to(app.topic("user_spending_summary", value="str"))
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

    Create one with :meth:`streamflow.App.stream`; every operator returns a new ``Stream``.

    >>> from streamflow import App
    >>> app = App("demo")
    >>> words = app.stream(app.topic("words", value="str"))
    >>> upper = words.map_values(str.upper)
    >>> upper is words
    False
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
        >>> app = App("demo")
        >>> paid = app.stream(app.topic("orders")).filter(lambda k, v: v["status"] == "PAID")
        """
        _require_callable(predicate, "filter predicate")
        return self._child(FilterNode(predicate=predicate), name)

    def filter_not(
        self, predicate: Callable[[Any, Any], bool], *, name: str | None = None
    ) -> Stream:
        """Drop the records for which ``predicate(key, value)`` is true.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> orders = app.stream(app.topic("orders"))
        >>> live = orders.filter_not(lambda k, v: v["status"] == "CANCELLED")
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
        >>> app = App("demo")
        >>> amounts = app.stream(app.topic("orders")).map_values(lambda order: order["amount"])
        """
        _require_callable(mapper, "map_values mapper")
        return self._child(MapValuesNode(mapper=mapper), name, value_codec=_maybe_codec(codec))

    def map(
        self, mapper: Callable[[Any, Any], tuple[Any, Any]], *, name: str | None = None
    ) -> Stream:
        """Transform each record with ``mapper(key, value) -> (new_key, new_value)``.

        Changing keys on a stream that is later grouped triggers a repartition.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> by_user = app.stream(app.topic("orders")).map(lambda k, v: (v["user_id"], v))
        """
        _require_callable(mapper, "map mapper")
        return self._child(MapNode(mapper=mapper), name)

    def select_key(self, selector: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        """Set each record's key to ``selector(key, value)``; the value is kept.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> by_user = app.stream(app.topic("orders")).select_key(lambda k, v: v["user_id"])
        """
        _require_callable(selector, "select_key selector")
        return self._child(SelectKeyNode(selector=selector), name)

    def flat_map_values(
        self, mapper: Callable[[Any], Iterable[Any]], *, name: str | None = None
    ) -> Stream:
        """Replace each record by one record per item of ``mapper(value)``, same key.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> words = app.stream(app.topic("lines", value="str")).flat_map_values(str.split)
        """
        _require_callable(mapper, "flat_map_values mapper")
        return self._child(FlatMapValuesNode(mapper=mapper), name)

    def peek(self, action: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        """Call ``action(key, value)`` for each record (logging, metrics) and pass it on.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> seen = app.stream(app.topic("orders")).peek(lambda k, v: None)
        """
        _require_callable(action, "peek action")
        return self._child(PeekNode(action=action), name)

    def to(self, topic: Topic | str, *, name: str | None = None) -> None:
        """Write every record to ``topic`` with the topic's codecs (a terminal step).

        Inside an exactly-once app the writes commit atomically with the consumed offsets.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> app.stream(app.topic("orders")).to(app.topic("orders-copy"))
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
        >>> app = App("demo")
        >>> per_user = app.stream(app.topic("orders")).group_by(lambda k, v: v["user_id"])
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

        >>> from streamflow import App
        >>> app = App("demo")
        >>> per_order = app.stream(app.topic("orders")).group_by_key()
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

    >>> from streamflow import App
    >>> app = App("demo")
    >>> counts = app.stream(app.topic("orders")).group_by(lambda k, v: v["user_id"]).count()
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

        >>> from streamflow import App, tumbling
        >>> app = App("demo")
        >>> per_minute = (app.stream(app.topic("orders"))
        ...               .group_by(lambda k, v: v["user_id"])
        ...               .windowed_by(tumbling(60))
        ...               .count(name="orders-per-minute"))
        >>> per_minute.key_codec.name
        'windowed[str]'
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
        >>> app = App("demo")
        >>> totals = (app.stream(app.topic("orders"))
        ...           .group_by(lambda k, v: v["user_id"])
        ...           .aggregate(lambda: Decimal("0"),
        ...                      lambda user, order, total: total + Decimal(order["amount"]),
        ...                      name="totals", value="decimal"))
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

        The first value of a key becomes its aggregate as is.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> latest = (app.stream(app.topic("prices"))
        ...           .group_by(lambda k, v: v["sku"])
        ...           .reduce(lambda old, new: new, name="latest-price"))
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
        >>> app = App("demo")
        >>> per_user = app.stream(app.topic("orders")).group_by(lambda k, v: v["user_id"])
        >>> orders_per_user = per_user.count(name="orders-per-user")
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
    :meth:`to_stream`.

    >>> from streamflow import App
    >>> app = App("demo")
    >>> counts = app.stream(app.topic("orders")).group_by(lambda k, v: v["user_id"]).count()
    >>> counts.name
    'count'
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
        >>> app = App("demo")
        >>> counts = app.stream(app.topic("orders")).group_by(lambda k, v: v["user_id"]).count()
        >>> counts.to_stream().map_values(str).to(app.topic("counts", value="str"))
        """
        return Stream(self._app, self._node, self.key_codec, self.value_codec)

    def __repr__(self) -> str:
        return f"Table({self.name!r})"


def _maybe_codec(codec: Codec | str | None) -> Codec | None:
    return None if codec is None else resolve_codec(codec)
