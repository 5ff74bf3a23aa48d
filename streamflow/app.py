"""The user's entry point: :class:`App` declares topics, streams, tables and agents.

An app module builds one ``App``; ``streamflow worker path/to/app.py`` runs it.

Example:
    >>> from decimal import Decimal
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("user-spending")
    >>> orders = app.topic("order_events", key="str", value="json")
    >>> @app.table(source=orders, key_by=lambda k, order: order["user_id"],
    ...            initial=Decimal("0"), value="decimal")
    ... def spending(total, order):
    ...     return total + Decimal(order["amount"])
    >>> spending.name
    'spending'
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many(orders, [("o1", {"user_id": "u1", "amount": "1.50"}),
    ...                               ("o2", {"user_id": "u1", "amount": "2.00"})])
    ...     driver.table("spending")["u1"]
    Decimal('3.50')
"""

from __future__ import annotations

import copy
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from streamflow.codecs import Codec
from streamflow.dsl.agents import add_agent
from streamflow.dsl.policies import ErrorPolicy
from streamflow.dsl.processing import StateStore, make_state_store
from streamflow.dsl.schedules import (
    Schedule,
    ScheduleFunction,
    crontab_schedule,
    timer_schedule,
)
from streamflow.dsl.stream import GlobalTable, Stream, Table
from streamflow.dsl.topology import AgentNode, SourceNode, Topology, TopologyBuilder
from streamflow.topics import Topic, topic_name_override

__all__ = ["GUARANTEES", "AgentSpec", "App", "ViewSpec"]

GUARANTEES = ("exactly_once", "at_least_once")


#: An agent function: ``async def fn(stream)`` (or an async generator, with ``sink=``).
AgentFunction = Callable[[Any], Any]


@dataclass
class AgentSpec:
    """An agent as declared: ``fn(stream)`` consumes the records of ``topic``."""

    topic: Topic
    fn: AgentFunction
    name: str
    concurrency: int
    #: Its node in the plan.
    node: AgentNode


#: ``async def view(request, tables) -> JSON-able``
ViewFunction = Callable[[Any, Any], Awaitable[Any]]


@dataclass
class ViewSpec:
    """A custom read-only view: ``fn(request, tables)`` served at ``GET /views/<name>``."""

    name: str
    fn: ViewFunction


class App:
    """A stream app: its id, its topics, and the processing declared on them.

    ``id`` names the consumer group, the transactional producers, internal topics
    (``<id>-...-repartition``, ``<id>-<table>-changelog``), the dead-letter topic
    (``<id>-dlq``) and the local state folder (``state/<id>/``). The environment variable
    ``STREAMFLOW_APP_ID`` overrides it (handy for tests and staging).

    ``partitions`` is used for topics the app creates. ``processing_guarantee`` is
    ``"exactly_once"`` (Kafka transactions; the default) or ``"at_least_once"``.
    ``batch_size`` bounds how many records one batch processes.

    >>> app = App("clicks", partitions=4)
    >>> app.id, app.processing_guarantee
    ('clicks', 'exactly_once')
    """

    def __init__(
        self,
        id: str,
        *,
        broker: str | None = None,
        partitions: int = 8,
        processing_guarantee: str = "exactly_once",
        commit_interval: float | None = None,
        batch_size: int = 2000,
        dead_letter_topic: str | None = None,
    ) -> None:
        if not id or not isinstance(id, str):
            raise ValueError("an app needs a non-empty id, e.g. App('user-spending')")
        if processing_guarantee not in GUARANTEES:
            raise ValueError(
                f"processing_guarantee must be one of {', '.join(GUARANTEES)}, "
                f"got {processing_guarantee!r}"
            )
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.id = os.environ.get("STREAMFLOW_APP_ID") or id
        self.broker = broker
        self.partitions = partitions
        self.processing_guarantee = processing_guarantee
        self.commit_interval = commit_interval
        self.batch_size = batch_size
        self.dead_letter_topic = dead_letter_topic or f"{self.id}-dlq"
        self.builder = TopologyBuilder(self.id, partitions)
        # The source node of each topic read as a stream (a topic is read once).
        self._sources: dict[str, SourceNode] = {}
        self.topics: dict[str, Topic] = {}
        self.agents: list[AgentSpec] = []
        self.tables: dict[str, Table] = {}
        self.global_tables: dict[str, GlobalTable] = {}
        self.views: dict[str, ViewSpec] = {}
        #: ``@app.timer`` and ``@app.crontab`` functions.
        self.schedules: list[Schedule] = []

    def topic(
        self,
        name: str,
        *,
        key: Codec | str = "str",
        value: Codec | str = "json",
        partitions: int | None = None,
        config: dict[str, str] | None = None,
        dead_letter_topic: str | None = None,
    ) -> Topic:
        """Declare a topic with its codecs and return it.

        ``key``/``value``: a codec or a shorthand (``"str"``, ``"bytes"``, ``"json"``,
        ``"int"``, ``"decimal"``, ``"avro:<schema name>"`` for ``schemas/<name>.avsc``).
        ``STREAMFLOW_TOPIC_<NAME>`` in the environment renames the topic.
        ``dead_letter_topic`` receives this topic's failing records instead of the app's
        dead-letter topic.

        >>> app = App("shop")
        >>> orders = app.topic("order_events", key="str", value="json")
        >>> app.topic("order_events") is orders
        True
        """
        name = topic_name_override(name)
        if name in self.topics:
            return self.topics[name]
        topic = Topic(
            name,
            key=key,
            value=value,
            partitions=partitions,
            config=config or {},
            dead_letter_topic=dead_letter_topic,
        )
        self.topics[name] = topic
        return topic

    def resolve_topic(self, topic: Topic | str) -> Topic:
        """Return ``topic`` itself, or the declared topic of that name (declaring it as JSON).

        >>> app = App("shop")
        >>> app.resolve_topic("events").value_codec.name
        'json'
        """
        if isinstance(topic, Topic):
            self.topics.setdefault(topic.name, topic)
            return topic
        return self.topics.get(topic_name_override(topic)) or self.topic(topic)

    def stream(
        self,
        topic: Topic | str | Sequence[Topic | str],
        *,
        name: str | None = None,
        on_error: ErrorPolicy | None = None,
        timestamp: Callable[[Any, Any], Any] | None = None,
    ) -> Stream:
        """Start a :class:`~streamflow.dsl.stream.Stream` reading ``topic`` (or several).

        With a list of topics the stream holds the records of all of them (a merge of one
        stream per topic; ``name`` names the merge).

        ``timestamp(key, value)`` reads each record's event time from the record (epoch
        milliseconds as an int, or an aware ``datetime``): windows, stream-stream joins,
        event-time timers and the records written on use it instead of the Kafka
        timestamp. A record whose extractor raises (or returns something else) follows
        the error policy, as a record that fails to decode.

        ``on_error`` says what happens to records that fail to decode or make user code
        raise, here and downstream (after ``group_by`` too): ``DeadLetter()`` (the
        default), ``Retry(attempts=…, backoff=…)`` or ``Stop()``; see
        :mod:`streamflow.dsl.policies`.

        >>> from streamflow import App, DeadLetter
        >>> from streamflow.testing import TestDriver
        >>> app = App("shop")
        >>> orders = app.stream(app.topic("order_events", value="json"), on_error=DeadLetter())
        >>> orders.filter(lambda k, v: v["status"] == "PAID").to(app.topic("paid", value="json"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("order_events", "o1", {"status": "PAID"})
        ...     driver.pipe_raw("order_events", b"o2", b"not json")
        ...     driver.read("paid"), [letter.step for letter in driver.dead_letters()]
        ([('o1', {'status': 'PAID'})], ['decode'])
        >>> both = app.stream(["web-clicks", "app-clicks"])
        >>> views = app.stream(app.topic("views", value="json"),
        ...                    timestamp=lambda key, value: value["at"])
        """
        if isinstance(topic, Sequence) and not isinstance(topic, str):
            if not topic:
                raise ValueError("app.stream needs at least one topic")
            streams = [self.stream(t, on_error=on_error, timestamp=timestamp) for t in topic]
            merged = streams[0]
            for index, other in enumerate(streams[1:]):
                last = index == len(streams) - 2
                merged = merged.merge(other, name=name if last else None)
            return merged
        source_topic = self.resolve_topic(topic)
        node = self._sources.get(source_topic.name)
        if timestamp is not None and not callable(timestamp):
            raise TypeError(
                "timestamp= must be a function (key, value) -> epoch milliseconds, got "
                f"{type(timestamp).__name__}"
            )
        if node is None:
            node = self.builder.add(
                SourceNode(topic=source_topic, on_error=on_error, timestamp=timestamp), name=name
            )
            self._sources[source_topic.name] = node
        else:
            node.on_error = _one_of(node.on_error, on_error, source_topic.name, "error policies")
            node.timestamp = _one_of(
                node.timestamp, timestamp, source_topic.name, "timestamp extractors"
            )
        # A topic read twice is read once: both streams start at the same source (as the
        # same partition of it is one task's), each with its own operators.
        return Stream(
            self,
            node,
            source_topic.key_codec,
            source_topic.value_codec,
            partitions=source_topic.partitions,
        )

    def table_of(
        self,
        topic: Topic | str,
        *,
        name: str | None = None,
        on_error: ErrorPolicy | None = None,
    ) -> Table:
        """A table of the latest value of each key of ``topic``; a tombstone deletes the key.

        Stored in RocksDB as ``name`` (default: the topic's name) with its own changelog,
        recovered after restarts, queryable through table views, joinable with streams and
        tables of co-partitioned topics.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("shop")
        >>> customers = app.table_of(app.topic("customers", value="json"), name="customers")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("customers", "c1", {"name": "Ada"})
        ...     driver.pipe("customers", "c1", {"name": "Ada L."})
        ...     driver.table("customers")["c1"]
        {'name': 'Ada L.'}
        """
        source = self.resolve_topic(topic)
        return self.stream(source, on_error=on_error).to_table(name=name or source.name)

    def global_table(self, topic: Topic | str, *, name: str | None = None) -> GlobalTable:
        """A table of ``topic`` replicated in full on every worker, to join by any key.

        Every worker reads all of the topic (no partitioning), restores the table before it
        processes anything and keeps it current; ``name`` defaults to the topic's name.
        See :class:`~streamflow.dsl.stream.GlobalTable`.

        >>> app = App("shop")
        >>> app.global_table("regions")
        GlobalTable('regions')
        """
        source = self.resolve_topic(topic)
        table_name = name or source.name
        if table_name in self.global_tables:
            raise ValueError(f"a global table named {table_name!r} already exists")
        table = self.global_tables[table_name] = GlobalTable(table_name, source)
        return table

    def table(
        self,
        *,
        source: Topic | str | Stream,
        key_by: Callable[[Any, Any], Any] | None = None,
        where: Callable[[Any, Any], bool] | None = None,
        initial: Any = None,
        name: str | None = None,
        key: Codec | str = "str",
        value: Codec | str = "json",
        emit_to: Topic | str | None = None,
        emit_value: Callable[[Any], Any] | None = None,
        on_error: ErrorPolicy | None = None,
    ) -> Callable[[Callable[[Any, Any], Any]], Table]:
        """Declare an aggregate table with a decorated adder ``fn(aggregate, value)``.

        Reads ``source``; keeps records where ``where(key, value)`` holds; re-keys them by
        ``key_by(key, value)`` through a repartition topic (or groups by the record key
        when ``key_by`` is ``None``); starts each key at ``initial`` (a value, copied per
        key, or a zero-argument callable); stores the result in RocksDB under ``name``
        (default: the function's name). With ``emit_to`` every update is also written to
        that topic, its value mapped by ``emit_value``. ``on_error`` is the error policy
        of the table's processing (see :meth:`stream`).

        >>> from decimal import Decimal
        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("shop")
        >>> orders = app.topic("order_events")
        >>> @app.table(source=orders, where=lambda k, o: o["status"] == "PAID",
        ...            key_by=lambda k, o: o["user_id"], initial=Decimal("0.00"),
        ...            name="user-spending-store", value="decimal",
        ...            emit_to=app.topic("user_spending_summary", value="str"), emit_value=str)
        ... def user_spending(total, order):
        ...     return total + Decimal(order["amount"])
        >>> user_spending.name
        'user-spending-store'
        >>> with TestDriver(app) as driver:
        ...     driver.pipe(orders, "o1", {"user_id": "u1", "status": "PAID", "amount": "2.50"})
        ...     driver.pipe(orders, "o2", {"user_id": "u1", "status": "NEW", "amount": "9.00"})
        ...     driver.read("user_spending_summary"), driver.table("user-spending-store")["u1"]
        ([('u1', '2.50')], Decimal('2.50'))
        """
        initializer = initial if callable(initial) else (lambda: copy.deepcopy(initial))

        def decorate(adder: Callable[[Any, Any], Any]) -> Table:
            stream = (
                source if isinstance(source, Stream) else self.stream(source, on_error=on_error)
            )
            if where is not None:
                stream = stream.filter(where)
            table_name = name or adder.__name__.replace("_", "-")
            grouped = (
                stream.group_by(key_by, key=key, name=table_name)
                if key_by is not None
                else stream.group_by_key(key=key, name=table_name)
            )
            table = grouped.aggregate(
                initializer,
                lambda k, v, aggregate: adder(aggregate, v),
                name=table_name,
                value=value,
            )
            if emit_to is not None:
                updates = table.to_stream()
                if emit_value is not None:
                    updates = updates.map_values(emit_value)
                updates.to(emit_to)
            return table

        return decorate

    def table_store(
        self,
        name: str,
        *,
        key: Codec | str = "str",
        value: Codec | str = "json",
        default: Callable[[], Any] | None = None,
    ) -> StateStore:
        """Declare a key-value store for processors (``stream.process(fn, stores=[...])``).

        It lives in RocksDB, one database per partition of the processor's input, with the
        changelog ``<app-id>-<name>-changelog``; it is recovered after restarts and
        answers table views like every table. ``default()`` is what a missing key reads as.

        >>> app = App("shop")
        >>> app.table_store("stock", key="str", value="int", default=int).name
        'stock'
        """
        return make_state_store(name, key, value, default)

    def agent(
        self,
        topic: Topic | str,
        *,
        name: str | None = None,
        concurrency: int = 1,
        sink: Topic | str | None = None,
        stores: Sequence[StateStore] = (),
        on_error: ErrorPolicy | None = None,
    ) -> Callable[[AgentFunction], AgentFunction]:
        """Declare an agent: an async function over the records of ``topic``.

        The function gets a stream to iterate: ``async for value in stream``,
        ``stream.items()`` for ``(key, value)`` pairs, ``stream.events()`` for records
        with timestamp and headers. What it does for a record is committed with the
        record's offset, exactly once under exactly-once:

        * ``await other_topic.send(key, value)`` sends a record;
        * an async generator agent ``yield``s ``(key, value)`` pairs into ``sink``;
        * ``stores=[...]`` (from :meth:`table_store`) are its state: ``store[key]``,
          ``store.get(key)``, ``del store[key]``, partitioned like ``topic`` (a write for
          a key of another partition is an error), with changelogs, visible in table views.

        A record the function raises on is dead-lettered (or retried, or stops the worker:
        ``on_error``, shared with the topic's streams), with nothing it sent or wrote, and
        the instance is started again. ``concurrency`` instances share the stream; the
        worker waits for all of a batch's records before it commits.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("shop")
        >>> orders, alerts = app.topic("order_events", value="json"), app.topic("alerts")
        >>> counts = app.table_store("orders-per-user", value="int", default=int)
        >>> @app.agent(orders, stores=[counts])
        ... async def watch(stream):
        ...     async for order_id, order in stream.items():
        ...         counts[order_id] += 1
        ...         if counts[order_id] == 2:
        ...             await alerts.send(order_id, {"repeated": order_id})
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many(orders, [("o1", {}), ("o1", {}), ("o2", {})])
        ...     driver.read(alerts), driver.table("orders-per-user")["o1"]
        ([('o1', {'repeated': 'o1'})], 2)
        """
        stream = self.stream(topic, on_error=on_error)
        sink_topic = None if sink is None else self.resolve_topic(sink)

        def decorate(fn: AgentFunction) -> AgentFunction:
            node = add_agent(
                stream,
                fn,
                name=name or fn.__name__,
                concurrency=concurrency,
                sink=sink_topic,
                stores=stores,
            )
            self.agents.append(AgentSpec(stream._node.topic, fn, node.name, concurrency, node))
            return fn

        return decorate

    def timer(
        self, interval: float, *, on_leader: bool = False, name: str | None = None
    ) -> Callable[[ScheduleFunction], ScheduleFunction]:
        """Run an async function of no arguments every ``interval`` seconds.

        On every worker, or on one worker of the group with ``on_leader=True``. It may
        send records (``await topic.send(...)``, acknowledged before it returns); see
        :mod:`streamflow.dsl.schedules`. The test driver runs it as ``advance_time``
        passes its times.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("shop")
        >>> runs = []
        >>> @app.timer(10.0, on_leader=True)
        ... async def housekeeping():
        ...     runs.append("ran")
        >>> with TestDriver(app) as driver:
        ...     driver.advance_time(25)
        >>> runs
        ['ran', 'ran']
        """

        def decorate(fn: ScheduleFunction) -> ScheduleFunction:
            schedule_name = name or fn.__name__
            self._add_schedule(
                timer_schedule(fn, interval, name=schedule_name, on_leader=on_leader)
            )
            return fn

        return decorate

    def crontab(
        self,
        cron: str,
        *,
        on_leader: bool = False,
        timezone: tzinfo | None = None,
        name: str | None = None,
    ) -> Callable[[ScheduleFunction], ScheduleFunction]:
        """Run an async function of no arguments at the times of a cron expression.

        ``"*/5 * * * *"`` is every five minutes; ``timezone`` (a ``tzinfo``, default
        UTC) is the one the expression is read in. ``on_leader=True`` runs it on one
        worker of the group. See :mod:`streamflow.dsl.schedules`.

        >>> from streamflow import App
        >>> from streamflow.testing import TestDriver
        >>> app = App("shop")
        >>> report = app.topic("daily-report", value="json")
        >>> @app.crontab("0 6 * * *", on_leader=True)
        ... async def morning_report():
        ...     await report.send("all", {"hello": "morning"})
        >>> with TestDriver(app, start_time=0) as driver:
        ...     driver.advance_time(2 * 86400)
        ...     [r.timestamp // 3_600_000 for r in driver.read_records(report)]
        [6, 30]
        """

        def decorate(fn: ScheduleFunction) -> ScheduleFunction:
            schedule_name = name or fn.__name__
            self._add_schedule(
                crontab_schedule(
                    fn, cron, name=schedule_name, on_leader=on_leader, timezone=timezone
                )
            )
            return fn

        return decorate

    def _add_schedule(self, schedule: Schedule) -> None:
        if any(known.name == schedule.name for known in self.schedules):
            raise ValueError(
                f"a timer or crontab named {schedule.name!r} already exists in app "
                f"{self.id!r}; give one of them name=..."
            )
        self.schedules.append(schedule)

    def view(self, name: str | None = None) -> Callable[[ViewFunction], ViewFunction]:
        """Declare a custom read-only view, served by every worker at ``GET /views/<name>``.

        The function receives the HTTP request (``request.query`` holds the query
        parameters) and the app's tables as readers (``await tables[name].get(key)``,
        ``async for key, value in tables[name].items(prefix=...)``); it returns anything
        JSON can show (decimals become strings).

        >>> app = App("shop")
        >>> @app.view("top-spenders")
        ... async def top_spenders(request, tables):
        ...     totals = [(v, k) async for k, v in tables["user-spending-store"].items()]
        ...     return [{"user": k, "total": v} for v, k in sorted(totals, reverse=True)[:10]]
        >>> sorted(app.views)
        ['top-spenders']
        """

        def decorate(fn: ViewFunction) -> ViewFunction:
            view_name = name or fn.__name__.replace("_", "-")
            if view_name in self.views:
                raise ValueError(f"a view named {view_name!r} already exists in app {self.id!r}")
            self.views[view_name] = ViewSpec(view_name, fn)
            return fn

        return decorate

    def topology(self) -> Topology:
        """Build the plan of this app's streams and tables.

        >>> app = App("shop")
        >>> _ = app.stream("a").to("b")
        >>> len(app.topology().subtopologies)
        1
        """
        return self.builder.build()

    def __repr__(self) -> str:
        return f"App({self.id!r})"


def _one_of(current: Any, given: Any, topic: str, what: str) -> Any:
    """A setting of a topic read twice: the one given, unless it differs from the first."""
    if given is None or current is None or given == current:
        return current if given is None else given
    raise ValueError(
        f"topic {topic!r} is read with two {what} ({current!r} and {given!r}); a topic is "
        "read once, with one"
    )
