"""A sub-topology's batch task: decode, run the operators, write everything of the batch.

One :class:`SubtopologyTask` exists per sub-topology; it processes batches of consumed
records one source partition at a time. Everything a batch produces — output records,
repartition records, changelog records, dead letters — goes through the producer that
owns that source partition, so under exactly-once it commits atomically with the
consumed offsets.

Example:
    The runtime creates tasks; see :class:`streamflow.runtime.engine.Runtime`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamflow.dsl.topology import AggregateNode, Subtopology
from streamflow.runtime.agents import (
    AgentRunner,
    Event,
    OutRecord,
    RecordScope,
    agent_slot,
)
from streamflow.runtime.batch import (
    DELETED,
    MISSING,
    BatchContext,
    Failure,
    TableBatch,
    detached,
)
from streamflow.runtime.failures import FailureRouter
from streamflow.runtime.processors import compile_sources
from streamflow.runtime.sender import RecordSender, Sent
from streamflow.state.base import TableStore

__all__ = ["ConsumedRecord", "SubtopologyTask", "TableRuntime"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConsumedRecord:
    """A record as consumed: raw bytes and where it came from."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    offset: int
    headers: Sequence[tuple[str, bytes]] = ()
    #: The source topic; empty for the sub-topology's first (or only) source.
    topic: str = ""


class TableRuntime:
    """A table's live pieces: its store, read caches and changelog topic name.

    ``store`` returns the table's :class:`~streamflow.state.base.TableStore` (the worker's
    RocksDB store is created by faust when the worker starts, hence a callable).

    >>> from streamflow.dsl.topology import AggregateNode
    >>> from streamflow.codecs import resolve_codec
    >>> from streamflow.state.memory import MemoryStore
    >>> node = AggregateNode(store="totals", key_codec=resolve_codec("str"),
    ...                      value_codec=resolve_codec("int"))
    >>> store = MemoryStore()
    >>> table = TableRuntime(node, lambda: store, changelog="app-totals-changelog", partitions=8)
    >>> table.batch(0).load("alice", lambda: 0)
    0
    """

    MAX_CACHED_KEYS = 200_000

    def __init__(
        self,
        node: AggregateNode,
        store: Callable[[], TableStore],
        changelog: str,
        partitions: int,
    ) -> None:
        self.node = node
        self.name = node.store
        self._store = store
        self.changelog = changelog
        self.partitions = partitions
        self.caches: dict[int, dict[Any, Any]] = {}

    @property
    def store(self) -> TableStore:
        """The table's store."""
        return self._store()

    def batch(self, partition: int) -> TableBatch:
        """A batch view of ``partition``, reading through the partition's cache."""
        cache = self.caches.setdefault(partition, {})
        if len(cache) > self.MAX_CACHED_KEYS:
            cache.clear()
        store = self.store
        encode_key = self.node.key_codec.encode
        decode_value = self.node.value_codec.decode

        def read(key: Any) -> Any:
            raw = store.get_raw(partition, encode_key(key))
            return MISSING if raw is None else decode_value(raw)

        decode_key = self.node.key_codec.decode

        def scan(start: bytes, end: bytes) -> list[tuple[Any, Any]]:
            return [
                (decode_key(k), decode_value(v)) for k, v in store.raw_items(partition, start, end)
            ]

        return TableBatch(
            cache,
            read,
            stored_keys=lambda: store.raw_keys(partition),
            decode_key=decode_key,
            scan_raw=scan,
        )

    def forget(self, partitions: Sequence[int] | None = None) -> None:
        """Drop read caches (all, or of ``partitions``) after a rebalance."""
        if partitions is None:
            self.caches.clear()
        else:
            for partition in partitions:
                self.caches.pop(partition, None)

    def checkpoint(self, partition: int) -> None:
        """Mark ``partition`` committed (call after its transaction committed)."""
        self.store.checkpoint(partition)


class SubtopologyTask:
    """Runs one sub-topology over batches of consumed records."""

    def __init__(
        self,
        subtopology: Subtopology,
        tables: dict[str, TableRuntime],
        failures: FailureRouter,
        *,
        clock: Callable[[], float] = time.time,
        global_tables: Mapping[str, Any] | None = None,
    ) -> None:
        """``clock`` gives the current time in seconds (changelog record timestamps);
        ``global_tables`` the app's global table states by name (for joins)."""
        self.subtopology = subtopology
        self.clock = clock
        self.global_tables = dict(global_tables or {})
        self.failures = failures
        self.source = subtopology.source.topic
        self.tables = tables
        pushes = compile_sources(subtopology.sources)
        #: Per source topic: its topic declaration (codecs) and the push of its operators.
        self._inputs = {
            source.topic.name: (source.topic, push)
            for source, push in zip(subtopology.sources, pushes, strict=True)
        }
        self._inputs[""] = self._inputs[self.source.name]
        #: The agents fed by the sub-topology, each with its runner.
        self._agents = [(node, AgentRunner(node)) for node in subtopology.agents]
        self.processed = 0
        self.failed = 0

    async def process(
        self, partition: int, records: list[ConsumedRecord], sender: RecordSender
    ) -> list[Sent]:
        """Process the records of one source partition and hand all they produce to ``sender``.

        Returns what was sent: the caller flushes ``sender`` and must see every send
        acknowledged before it commits the consumed offsets (and, under exactly-once, the
        transaction).
        """
        ctx = self._run(partition, records)
        agent_scopes: list[RecordScope] = []
        if self._agents:
            agent_scopes = await self._run_agents(partition, records, ctx)
            failed = [s for s in agent_scopes if s.error is not None]
            if failed:
                # The operators run again without the records an agent failed: a failed
                # record leaves nothing behind anywhere.
                skip = {f.source_index: f for f in ctx.failures}
                for scope in failed:
                    skip.setdefault(
                        scope.source_index, Failure(scope.source_index, scope.error, scope.agent)
                    )
                ctx = self._run(partition, records, skip)
                # Each finished record wrote into the first run's tables: write it again
                # into this run's.
                self._keep_agent_effects(ctx, agent_scopes)
        # Under the Stop policy nothing of a batch with a failure may be sent.
        self.failures.check_stop(partition, records, ctx.failures)
        pending: list[Sent] = []
        for topic, out, to_partition in ctx.outputs.values():
            sent = await sender.send(topic.name, out, partition=to_partition)
            pending.extend(sent.values())
        if agent_scopes:
            outputs = [o for scope in agent_scopes if scope.error is None for o in scope.outputs]
            pending.extend(await _send_agent_outputs(sender, outputs))
        for name, table_batch in ctx.touched_tables.items():
            pending.extend(
                await self._write_table(self.tables[name], partition, table_batch, sender)
            )
        ctx.written()
        for step, count in ctx.late.items():
            self.failures.metrics.records_late(self.source.name, step, count)
        if ctx.failures:
            self.failed += len(ctx.failures)
            pending.extend(await self.failures.route(sender, partition, records, ctx.failures))
        self.processed += len(records)
        return pending

    async def _run_agents(
        self, partition: int, records: list[ConsumedRecord], ctx: BatchContext
    ) -> list[RecordScope]:
        """Hand each agent the records the operators passed it; return their scopes, in
        agent then record order."""
        scopes: list[RecordScope] = []
        for node, runner in self._agents:
            batch = ctx.scratch.get(agent_slot(node), ())
            stores = {
                store.store: (
                    ctx.table(store.store),
                    store.default,
                    self.subtopology.source.topic.partitions or self.tables[store.store].partitions,
                )
                for store in node.stores
            }
            mine = []
            for key, value, timestamp, index in batch:
                record = records[index]
                event = Event(
                    key,
                    detached(value),
                    timestamp,
                    list(record.headers or ()),
                    record.topic or self.source.name,
                    partition,
                    record.offset,
                )
                mine.append(RecordScope(event, index, stores))
            await runner.run(mine)
            scopes.extend(mine)
        return scopes

    @staticmethod
    def _keep_agent_effects(ctx: BatchContext, scopes: list[RecordScope]) -> None:
        """Write what the agents did for the records they finished into the batch."""
        for scope in scopes:
            if scope.error is not None:
                continue
            for name, overlay in scope.overlays.items():
                ctx.table(name).updated.update(overlay.updated)

    async def close(self) -> None:
        """Stop the agents' instances (the worker is stopping)."""
        for _, runner in self._agents:
            await runner.stop()

    def _run(
        self,
        partition: int,
        records: list[ConsumedRecord],
        skip: dict[int, Failure] | None = None,
    ) -> BatchContext:
        """Run the operators over ``records``: all of a record's effects, or none of them.

        A record that fails after it already changed something (a table, an output of
        another branch) must not leave that change behind: it goes to the dead-letter or
        retry topic, and a replay or retry would apply it a second time. So when a record
        fails past decoding, the batch runs again, on fresh batch state, without it (and
        again, should another record fail only now: the set of failed records only grows).
        """
        skip = dict(skip or {})
        while True:
            ctx = BatchContext(
                partition,
                lambda name: self.tables[name].batch(partition),
                global_table=self.global_tables.__getitem__,
                headers_of=lambda index: list(records[index].headers or ()),
                now_ms=lambda: int(self.clock() * 1000),
            )
            for topic, decoded in self._decode(records, ctx, skip):
                self._inputs[topic][1](decoded, ctx)
            new = [f for f in ctx.failures if f.source_index not in skip]
            for failure in new:
                skip.setdefault(failure.source_index, failure)
            if not any(f.step != "decode" for f in new):
                ctx.failures = sorted(skip.values(), key=lambda f: f.source_index)
                return ctx

    def _decode(
        self, records: list[ConsumedRecord], ctx: BatchContext, skip: Container[int] = ()
    ) -> list[tuple[str, list[tuple]]]:
        """Decode ``records`` into runs of consecutive records of one source topic each."""
        runs: list[tuple[str, list[tuple]]] = []
        current_topic: str | None = None
        decode_key = decode_value = None
        out: list[tuple] = []
        for index, record in enumerate(records):
            if index in skip:
                continue
            if record.topic != current_topic:
                current_topic = record.topic
                topic = self._inputs[current_topic][0]
                decode_key, decode_value = topic.decode_key, topic.decode_value
                out = []
                runs.append((current_topic, out))
            try:
                out.append(
                    (decode_key(record.key), decode_value(record.value), record.timestamp_ms, index)
                )
            except Exception as exc:
                ctx.fail(index, exc, "decode")
        return [(topic, decoded) for topic, decoded in runs if decoded]

    async def _write_table(
        self, table: TableRuntime, partition: int, batch: TableBatch, sender: RecordSender
    ) -> list[Sent]:
        if not batch.updated:
            return []
        encode_key = table.node.key_codec.encode
        encode_value = table.node.value_codec.encode
        now = int(self.clock() * 1000)
        items = {
            encode_key(k): None if v is DELETED else encode_value(v)
            for k, v in batch.updated.items()
        }
        table.store.write_raw(partition, items)
        for key, value in batch.updated.items():
            if value is DELETED:
                batch.cache.pop(key, None)
            else:
                batch.cache[key] = value
        sent = await sender.send(
            table.changelog, [(k, v, now) for k, v in items.items()], partition=partition
        )
        return list(sent.values())


async def _send_agent_outputs(sender: RecordSender, outputs: list[OutRecord]) -> list[Sent]:
    """Hand agents' sends to ``sender``, one call per topic (and explicit partition); the
    records of each keep the order they were sent in."""
    grouped: dict[tuple[str, int | None], tuple[list, list]] = {}
    for topic, partition, key, value, timestamp, headers in outputs:
        records, all_headers = grouped.setdefault((topic, partition), ([], []))
        records.append((key, value, timestamp))
        all_headers.append(headers)
    pending: list[Sent] = []
    for (topic, partition), (records, headers) in grouped.items():
        sent = await sender.send(topic, records, partition=partition, headers=headers)
        pending.extend(sent.values())
    return pending
