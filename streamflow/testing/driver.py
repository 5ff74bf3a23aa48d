"""The test driver: runs an app's real operators on in-memory topics, without a broker.

:class:`TestDriver` compiles the app's topology with the same code a worker runs
(:class:`~streamflow.runtime.tasks.SubtopologyTask`, the real codecs, error policies and
table logic) and keeps topics and tables in memory (tables in
:class:`~streamflow.state.memory.MemoryStore`, behind the same interface as RocksDB).
Processing is synchronous: when :meth:`TestDriver.pipe` returns, the record and everything
it caused downstream (repartition topics, chained tables, agents) has been processed, each
record committed as its own transaction.

Example:
    >>> from decimal import Decimal
    >>> from streamflow import App
    >>> app = App("shop")
    >>> orders = app.topic("orders", value="json")
    >>> totals = (app.stream(orders)
    ...           .filter(lambda order_id, order: order["status"] == "PAID")
    ...           .group_by(lambda order_id, order: order["user_id"])
    ...           .aggregate(lambda: Decimal("0"),
    ...                      lambda user, order, total: total + Decimal(order["amount"]),
    ...                      name="totals", value="decimal"))
    >>> totals.to_stream().map_values(str).to(app.topic("summary", value="str"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("orders", "o1", {"user_id": "u1", "status": "PAID", "amount": "2.50"})
    ...     driver.pipe("orders", "o2", {"user_id": "u1", "status": "NEW", "amount": "9.00"})
    ...     driver.pipe("orders", "o3", {"user_id": "u1", "status": "PAID", "amount": "1.25"})
    ...     print(driver.read("summary"), driver.table("totals")["u1"])
    [('u1', '2.50'), ('u1', '3.75')] 3.75
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamflow.app import App
from streamflow.codecs import Codec, resolve_codec
from streamflow.codecs.foreign_key import prefix_end
from streamflow.codecs.timers import WALL_CLOCK
from streamflow.dsl.topology import Subtopology
from streamflow.runtime.agents import AgentBroken
from streamflow.runtime.dead_letters import read_error_headers
from streamflow.runtime.failures import FailureRouter, ProcessingStopped, retry_due_ms
from streamflow.runtime.global_tables import GlobalTableState
from streamflow.runtime.metrics import WorkerMetrics
from streamflow.runtime.schedules import SenderEmitter, run_schedule
from streamflow.runtime.sender import partition_for
from streamflow.runtime.tasks import ConsumedRecord, SubtopologyTask, TableRuntime
from streamflow.state.memory import MemoryStore
from streamflow.testing.records import DeadLetterRecord, TestRecord
from streamflow.testing.tables import GlobalTableView, TableView
from streamflow.testing.topics import MemorySender, MemoryTopics, StoredRecord
from streamflow.topics import Topic, topic_name_override

__all__ = ["AgentBroken", "ProcessingStopped", "TestDriver"]

log = logging.getLogger(__name__)

HeadersLike = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]] | None

_BYTES = resolve_codec("bytes")


@dataclass
class _Consumer:
    """Where one reader of a topic (a sub-topology or a global table) is, per partition."""

    topic: str
    #: Retry topics are read only once their records are due.
    waits_until_due: bool = False
    positions: dict[int, int] = field(default_factory=dict)
    task: SubtopologyTask | None = None
    #: The tables ``task`` writes (committed with each of its records).
    tables: list[TableRuntime] = field(default_factory=list)
    #: A global table this reader keeps current.
    global_table: GlobalTableState | None = None


class TestDriver:
    """Run ``app`` in memory: pipe records in, read what it writes, look at its tables.

    ``app`` is an :class:`~streamflow.App` or a reference a worker takes
    (``"apps/user_spending.py"``, ``"apps.user_spending:app"``). ``start_time`` is the
    driver's wall-clock time in seconds since the epoch; it only moves with
    :meth:`advance_time`. Records piped without a timestamp get the wall-clock time.

    Use it as a context manager (or call :meth:`close`).

    >>> from streamflow import App
    >>> app = App("demo")
    >>> app.stream(app.topic("words", value="str")).map_values(str.upper).to(
    ...     app.topic("shouts", value="str"))
    >>> with TestDriver(app, start_time=60) as driver:
    ...     driver.pipe("words", None, "hi")
    ...     [(r.value, r.timestamp) for r in driver.read_records("shouts")]
    [('HI', 60000)]
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, app: App | str, *, start_time: float = 0.0) -> None:
        if isinstance(app, str):
            from streamflow.cli.loader import load_app

            app = load_app(app)
        if not isinstance(app, App):
            raise TypeError(f"TestDriver needs a streamflow App, got {type(app).__name__}")
        self.app = app
        self._time = float(start_time)
        self.topology = app.topology()
        #: The metrics a worker would expose (dead letters, retries …).
        self.metrics = WorkerMetrics(app.id, clock=self._clock)
        self._declared = self._declared_topics()
        self._topics = MemoryTopics(
            app.partitions, lambda name: getattr(self._declared.get(name), "partitions", None)
        )
        self._tables = {
            node.store: TableRuntime(
                node,
                lambda store=MemoryStore(): store,
                changelog=f"{app.id}-{node.store}-changelog",
                partitions=app.partitions,
            )
            for node in self.topology.stores
        }
        own_topics = {s.dead_letter_topic for s in self.topology.subtopologies}
        self._global_tables = {
            name: GlobalTableState(name, table.key_codec, table.value_codec, {})
            for name, table in app.global_tables.items()
        }
        self._dead_letter_topics = [app.dead_letter_topic, *sorted(own_topics - {None})]
        self._consumers = [
            consumer
            for sub in self.topology.subtopologies
            for consumer in self._subtopology_consumers(sub)
        ]
        self._consumers += [
            _Consumer(spec.topic.name, global_table=self._global_tables[name])
            for name, spec in app.global_tables.items()
        ]
        # Processors with timers: their tick topics get a tick whenever a wall-clock
        # timer falls due (a worker writes one every second).
        self._ticked = self.topology.ticked_processors
        # The next run of each schedule, in driver time (seconds).
        self._started = self._time
        self._schedule_due = {
            schedule.name: schedule.next_run(self._time, self._time) for schedule in app.schedules
        }
        self._read_from: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    # --- setting up ------------------------------------------------------------------------

    def _declared_topics(self) -> dict[str, Topic]:
        topics = dict(self.app.topics)
        for sub in self.topology.subtopologies:
            for source in sub.sources:
                topics.setdefault(source.topic.name, source.topic)
            for sink in sub.sinks:
                topics.setdefault(sink.topic.name, sink.topic)
        return topics

    def _subtopology_consumers(self, sub: Subtopology) -> list[_Consumer]:
        """One reader per source topic of ``sub``, all feeding the sub-topology's task."""
        failures = FailureRouter(
            self.app.id, sub, self.app.dead_letter_topic, self.metrics, clock=self._clock
        )
        task = SubtopologyTask(
            sub, self._tables, failures, clock=self._clock, global_tables=self._global_tables
        )
        tables = [self._tables[node.store] for node in sub.stores]
        return [
            _Consumer(
                source.topic.name,
                waits_until_due=bool(source.retry_attempt),
                task=task,
                tables=tables,
            )
            for source in sub.sources
        ]

    def _clock(self) -> float:
        return self._time

    # --- time ------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The driver's wall-clock time, in seconds since the epoch."""
        return self._time

    @property
    def now_ms(self) -> int:
        """The driver's wall-clock time, in milliseconds (the unit of record timestamps)."""
        return int(self._time * 1000)

    def advance_time(self, seconds: float) -> None:
        """Move wall-clock time forward, processing what falls due on the way.

        Time passes as it would for a worker: a retry due halfway is processed at that
        moment (its failure schedules the next attempt from then), a wall-clock timer of a
        processor fires at its time, ``@app.timer`` and ``@app.crontab`` functions run at
        theirs, and so on until the new time.

        >>> from streamflow import App
        >>> driver = TestDriver(App("demo"), start_time=10)
        >>> driver.advance_time(2.5)
        >>> driver.now
        12.5
        >>> driver.close()
        """
        if seconds < 0:
            raise ValueError("time only moves forward: advance_time needs seconds >= 0")
        target = self._time + seconds
        while True:
            retry_ms, timer_ms = self._next_due_ms(), self._next_wall_timer_ms()
            schedule_ms = self._next_schedule_ms()
            due_ms = min(
                (t for t in (retry_ms, timer_ms, schedule_ms) if t is not None), default=None
            )
            if due_ms is None or due_ms > target * 1000:
                break
            self._time = max(self._time, due_ms / 1000)
            if due_ms == timer_ms:
                self._tick()
            if due_ms == schedule_ms:
                self._run(self._run_schedules())
            self._run(self._drain())
        self._time = target
        self._run(self._drain())

    def _next_schedule_ms(self) -> int | None:
        """When the next ``@app.timer`` / ``@app.crontab`` run is, if the app has any."""
        return min((round(due * 1000) for due in self._schedule_due.values()), default=None)

    async def _run_schedules(self) -> None:
        """Run every schedule due now (the driver is every worker and the leader)."""
        emitter = SenderEmitter(lambda: MemorySender(self._topics), clock=self._clock)
        for schedule in self.app.schedules:
            due = self._schedule_due[schedule.name]
            if due <= self._time:
                await run_schedule(schedule, emitter)
                self._schedule_due[schedule.name] = schedule.next_run(
                    max(due, self._time), self._started
                )

    def _next_wall_timer_ms(self) -> int | None:
        """When the earliest wall-clock timer of a processor is due, if any is set."""
        due = []
        for topic_name, node in self._ticked.items():
            assert node.timers is not None
            store = self._tables[node.timers.store].store
            decode = node.timers.key_codec.decode
            start = WALL_CLOCK.encode()
            for partition in range(self._topics.get(topic_name).partitions):
                for raw_key, _ in store.raw_items(partition, start, prefix_end(start)):
                    due.append(decode(raw_key)[1])
                    break
        return min(due, default=None)

    def _tick(self) -> None:
        """A tick in every partition of every tick topic (as the workers write them)."""
        tick = resolve_codec("int").encode(self.now_ms)
        for topic_name, node in self._ticked.items():
            assert node.tick_source is not None
            for partition in range(self._topics.get(topic_name).partitions):
                self._append_bytes(node.tick_source.topic, None, tick, None, None, partition)

    def _next_due_ms(self) -> int | None:
        """When the earliest record waiting in a retry topic is due, if any waits."""
        due = [
            retry_due_ms(records[consumer.positions.get(partition, 0)].headers)
            for consumer in self._consumers
            if consumer.waits_until_due
            for partition, records in enumerate(self._topics.get(consumer.topic).by_partition)
            if consumer.positions.get(partition, 0) < len(records)
        ]
        return min(due, default=None)

    # --- input -----------------------------------------------------------------------------

    def pipe(
        self,
        topic: Topic | str,
        key: Any,
        value: Any,
        *,
        timestamp: int | None = None,
        headers: HeadersLike = None,
        partition: int | None = None,
    ) -> None:
        """Write one record to ``topic`` and process everything it causes.

        ``key`` and ``value`` are encoded with the topic's codecs (a value the codec cannot
        encode raises ``ValueError``, as a producer would); ``timestamp`` is in
        milliseconds (default: the driver's wall-clock time); ``headers`` a mapping or
        ``(name, value)`` pairs; ``partition`` defaults to the key's partition.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> app.stream(app.topic("in", value="int")).filter(lambda k, v: v > 1).to("out")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("in", "a", 1)
        ...     driver.pipe("in", "b", 2)
        ...     driver.read("out")
        [('b', 2)]
        """
        self._append(self._input_topic(topic), key, value, timestamp, headers, partition)
        self._run(self._drain())

    def pipe_many(
        self,
        topic: Topic | str,
        records: Iterable[tuple[Any, Any] | tuple[Any, Any, int]],
        *,
        headers: HeadersLike = None,
    ) -> None:
        """Write ``(key, value)`` or ``(key, value, timestamp_ms)`` records, then process.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> counts = app.stream(app.topic("in", value="int")).group_by_key().count(name="n")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_many("in", [("a", 1), ("b", 1), ("a", 5, 1000)])
        ...     sorted(driver.table("n").items())
        [('a', 2), ('b', 1)]
        """
        target = self._input_topic(topic)
        for record in records:
            key, value, *rest = record
            self._append(target, key, value, rest[0] if rest else None, headers, None)
        self._run(self._drain())

    def pipe_raw(
        self,
        topic: Topic | str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int | None = None,
        headers: HeadersLike = None,
        partition: int | None = None,
    ) -> None:
        """Write a record of bytes as they are (input that may not decode), then process.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> app.stream(app.topic("in", value="int")).to("out")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe_raw("in", b"k", b"not a number")
        ...     [(d.value, d.step) for d in driver.dead_letters()]
        [(b'not a number', 'decode')]
        """
        target = self._input_topic(topic)
        self._append_bytes(target, key, value, timestamp, headers, partition)
        self._run(self._drain())

    def _input_topic(self, topic: Topic | str) -> Topic:
        name = topic.name if isinstance(topic, Topic) else topic_name_override(topic)
        found = self.app.topics.get(name)
        if found is None:
            known = ", ".join(sorted(self.app.topics)) or "none"
            raise ValueError(
                f"app {self.app.id!r} declares no topic {name!r} (declared: {known}); "
                "declare it with app.topic(...) first"
            )
        return found

    def _append(
        self,
        topic: Topic,
        key: Any,
        value: Any,
        timestamp: int | None,
        headers: HeadersLike,
        partition: int | None,
    ) -> None:
        raw_key = _encode(topic, "key", topic.key_codec, key)
        raw_value = _encode(topic, "value", topic.value_codec, value)
        self._append_bytes(topic, raw_key, raw_value, timestamp, headers, partition)

    def _append_bytes(
        self,
        topic: Topic,
        key: bytes | None,
        value: bytes | None,
        timestamp: int | None,
        headers: HeadersLike,
        partition: int | None,
    ) -> None:
        partitions = self._topics.get(topic.name).partitions
        self._topics.append(
            topic.name,
            partition_for(key, partitions) if partition is None else partition,
            key,
            value,
            self.now_ms if timestamp is None else int(timestamp),
            _headers(headers),
        )

    # --- processing ------------------------------------------------------------------------

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            work.close()
            raise RuntimeError("this TestDriver is closed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._loop.run_until_complete(work)
            return
        # Called from async code (an async test): the driver's loop runs in a thread of its
        # own, since a thread can run one event loop at a time.
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(1, "streamflow-test-driver")
        self._thread.submit(self._loop.run_until_complete, work).result()

    async def _drain(self) -> None:
        """Process records in the order they were written until nothing is left to do."""
        while True:
            found = self._next_record()
            if found is None:
                return
            consumer, record = found
            if consumer.task is not None:
                await self._process(consumer, record)
            elif consumer.global_table is not None:
                consumer.global_table.apply(record.key, record.value)
            consumer.positions[record.partition] = record.offset + 1

    def _next_record(self) -> tuple[_Consumer, StoredRecord] | None:
        now_ms = self.now_ms
        best: tuple[_Consumer, StoredRecord] | None = None
        for consumer in self._consumers:
            topic = self._topics.get(consumer.topic)
            for partition, records in enumerate(topic.by_partition):
                position = consumer.positions.get(partition, 0)
                if position >= len(records):
                    continue
                record = records[position]
                if consumer.waits_until_due and retry_due_ms(record.headers) > now_ms:
                    continue
                if best is None or record.sequence < best[1].sequence:
                    best = (consumer, record)
        return best

    async def _process(self, consumer: _Consumer, record: StoredRecord) -> None:
        """One record as one transaction: process, send what it produced, commit its tables."""
        assert consumer.task is not None
        sender = MemorySender(self._topics)
        consumed = ConsumedRecord(
            record.key,
            record.value,
            record.timestamp,
            record.offset,
            list(record.headers),
            record.topic,
        )
        await consumer.task.process(record.partition, [consumed], sender)
        await sender.flush()
        for table in consumer.tables:
            table.checkpoint(record.partition)

    # --- output ----------------------------------------------------------------------------

    def read(self, topic: Topic | str) -> list[tuple[Any, Any]]:
        """The ``(key, value)`` records written to ``topic`` since the last read, decoded.

        Reading drains: records are returned once (``read`` and :meth:`read_records` share
        the position). Records come in the order they were written.
        """
        return [(record.key, record.value) for record in self.read_records(topic)]

    def read_records(self, topic: Topic | str) -> list[TestRecord]:
        """Like :meth:`read`, with timestamps, headers, partitions and offsets.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> app.stream(app.topic("in")).to(app.topic("out"))
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("in", "k", {"n": 1}, timestamp=5)
        ...     record = driver.read_records("out")[0]
        ...     record.value, record.timestamp, record.offset
        ({'n': 1}, 5, 0)
        """
        name = topic.name if isinstance(topic, Topic) else topic_name_override(topic)
        key_codec, value_codec = self._codecs_of(name)
        log_records = self._topics.get(name).log
        start = self._read_from.get(name, 0)
        self._read_from[name] = len(log_records)
        return [
            TestRecord(
                None if r.key is None else key_codec.decode(r.key),
                None if r.value is None else value_codec.decode(r.value),
                r.timestamp,
                list(r.headers),
                r.partition,
                r.offset,
            )
            for r in log_records[start:]
        ]

    def dead_letters(self) -> list[DeadLetterRecord]:
        """Records that failed since the last call, from every dead-letter topic of the app.

        Each keeps its original key and value bytes; ``step``, ``error`` and ``info`` say
        what went wrong and where the record came from.
        """
        letters = []
        for name in self._dead_letter_topics:
            start = self._read_from.get(name, 0)
            log_records = self._topics.get(name).log
            self._read_from[name] = len(log_records)
            letters.extend(log_records[start:])
        letters.sort(key=lambda r: r.sequence)
        return [
            DeadLetterRecord(
                r.key,
                r.value,
                r.timestamp,
                r.topic,
                read_error_headers(r.headers),
                list(r.headers),
            )
            for r in letters
        ]

    def table(self, name: str) -> TableView | GlobalTableView:
        """The table ``name`` as a read-only mapping of its committed state.

        >>> from streamflow import App
        >>> app = App("demo")
        >>> counts = app.stream(app.topic("in")).group_by_key().count(name="per-key")
        >>> with TestDriver(app) as driver:
        ...     driver.pipe("in", "a", {}); driver.pipe("in", "a", {})
        ...     driver.table("per-key")["a"], driver.table("per-key").get("zzz")
        (2, None)
        """
        table = self._tables.get(name)
        if table is None and name in self._global_tables:
            return GlobalTableView(self._global_tables[name])
        if table is None:
            known = ", ".join(sorted([*self._tables, *self._global_tables])) or "none"
            raise KeyError(f"app {self.app.id!r} has no table {name!r} (tables: {known})")
        return TableView(table)

    def _codecs_of(self, name: str) -> tuple[Codec, Codec]:
        declared = self._declared.get(name)
        if declared is not None:
            return declared.key_codec, declared.value_codec
        for table in self._tables.values():
            if table.changelog == name:
                return table.node.key_codec, table.node.value_codec
        if name in self._dead_letter_topics or name in self._topics:
            return _BYTES, _BYTES
        known = ", ".join(sorted(self._declared)) or "none"
        raise ValueError(f"app {self.app.id!r} reads or writes no topic {name!r} (topics: {known})")

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the agents and release the driver's event loop (idempotent)."""
        if self._closed:
            return
        tasks = {id(c.task): c.task for c in self._consumers if c.task is not None}

        async def stop_agents() -> None:
            for task in tasks.values():
                await task.close()

        self._run(stop_agents())
        self._closed = True
        if self._thread is not None:
            self._thread.submit(self._loop.close).result()
            self._thread.shutdown()
        else:
            self._loop.close()

    def __enter__(self) -> TestDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TestDriver({self.app.id!r})"


def _encode(topic: Topic, part: str, codec: Codec, value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return codec.encode(value)
    except Exception as exc:
        raise ValueError(
            f"cannot pipe this {part} to topic {topic.name!r}: its {codec.name} codec cannot "
            f"encode it ({exc}); a producer would refuse it too"
        ) from None


def _headers(headers: HeadersLike) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, value.encode() if isinstance(value, str) else value) for name, value in pairs]
