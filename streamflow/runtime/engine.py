"""Runs a streamflow :class:`~streamflow.app.App` on faust-streaming.

faust provides the worker lifecycle, consumer-group membership and partition assignment,
changelog recovery of tables and the web server. streamflow adds a batch path on top:

* the fetched records of each sub-topology's source topic go, a fetch at a time, to the
  sub-topology's inbox (bypassing faust's per-record path); a faust agent per sub-topology
  keeps the subscription and drains the inbox, handing records one source partition at a
  time to a
  :class:`~streamflow.runtime.tasks.SubtopologyTask`, which tracks the offsets to commit
  itself (one past the last record processed);
* under exactly-once, everything a batch of source partition *P* produces is sent through
  faust's transactional producer for *P* (``<app-id>-<group>-<P>``), the one that also
  commits *P*'s offsets — the pre-KIP-447 scheme, correct with aiokafka, whose
  TxnOffsetCommit cannot carry the group generation;
* a commit barrier keeps faust's periodic commit from running in the middle of a batch:
  a commit either sees all of a batch (outputs sent, records acked) or none of it;
* table partitions are marked committed only after their transaction commits (see
  :mod:`streamflow.state.rocksdb`).

Example:
    >>> from streamflow import App
    >>> from streamflow.runtime.engine import Runtime
    >>> from streamflow.runtime.settings import WorkerSettings
    >>> app = App("demo")
    >>> _ = app.stream("in").to("out")
    >>> runtime = Runtime(app, WorkerSettings.resolve(broker="127.0.0.1:9092"))
    >>> runtime.faust.conf.id
    'demo'
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import signal
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types import TP

from streamflow.app import App
from streamflow.runtime.failures import FailureRouter, ProcessingStopped, retry_due_ms
from streamflow.runtime.global_tables import (
    GlobalTableReplica,
    GlobalTableState,
    rocksdb_global_store,
)
from streamflow.runtime.metrics import TableStats, WorkerMetrics, rocksdb_stats
from streamflow.runtime.purge import Purger, purged_topics
from streamflow.runtime.recovery_ends import last_committed_ends
from streamflow.runtime.schedules import ScheduleRunner
from streamflow.runtime.sender import BatchSender, Sent
from streamflow.runtime.settings import WorkerSettings, state_dir
from streamflow.runtime.tasks import ConsumedRecord, SubtopologyTask, TableRuntime
from streamflow.runtime.ticks import Ticker
from streamflow.state import rocksdb
from streamflow.topics import Topic

__all__ = ["Runtime"]

log = logging.getLogger(__name__)

# Fetched batches waiting per sub-topology before the fetcher is held back.
INBOX_BATCHES = 256


@dataclass(frozen=True, slots=True)
class Fetched:
    """The records of one partition from one fetch, and the group generation it saw."""

    generation: int
    tp: Any
    records: list[Any]


# Exactly-once commits make output visible to read_committed readers: commit often.
EXACTLY_ONCE_COMMIT_INTERVAL = 0.1
AT_LEAST_ONCE_COMMIT_INTERVAL = 1.0


async def _wait_until_due(fetched: Sequence[Fetched]) -> None:
    """Sleep until every fetched retry record is due (retry topics fill in due order)."""
    due_ms = max(retry_due_ms(r.headers or ()) for batch in fetched for r in batch.records)
    delay = due_ms / 1000 - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _per_topic(
    task: SubtopologyTask, records: Sequence[ConsumedRecord]
) -> list[tuple[str, int, int, int]]:
    """``(topic, next offset, record count, oldest timestamp)`` of each topic of a batch."""
    seen: dict[str, list[int]] = {}
    for record in records:
        entry = seen.get(record.topic)
        if entry is None:
            seen[record.topic] = [record.offset + 1, 1, record.timestamp_ms]
        else:
            entry[0] = record.offset + 1
            entry[1] += 1
    return [(topic or task.source.name, *entry) for topic, entry in seen.items()]


class _FaustApp(faust.App):
    """faust's App with streamflow's commit barrier installed on its consumer and producer."""

    streamflow_runtime: Runtime

    def _new_consumer(self):
        consumer = super()._new_consumer()
        self.streamflow_runtime._install_commit_barrier(consumer)
        self.streamflow_runtime._install_fetch_routing(consumer)
        self.streamflow_runtime._install_stable_highwaters(consumer)
        return consumer

    def _new_producer(self):
        producer = super()._new_producer()
        self.streamflow_runtime._install_commit_hook(producer)
        return producer


class Runtime:
    """The faust app that runs ``app``, built from its topology.

    >>> # Runtime(app, settings).faust is a faust.App ready for faust.Worker
    """

    def __init__(self, app: App, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self.guarantee = settings.processing_guarantee or app.processing_guarantee
        self.exactly_once = self.guarantee == "exactly_once"
        self.topology = app.topology()
        self.barrier = asyncio.Lock()
        #: Set when a record failed under the Stop policy: the worker is stopping.
        self.fatal_error: ProcessingStopped | None = None
        self.tables: dict[str, TableRuntime] = {}
        #: Global tables by name, and the services that keep them current on this worker.
        self.global_tables: dict[str, GlobalTableState] = {}
        self.global_replicas: list[GlobalTableReplica] = []
        #: Services writing the ticks of processors' wall-clock timers (see ticks.py).
        self.tickers: list[Ticker] = []
        #: Runs the app's ``@app.timer`` and ``@app.crontab`` functions, if it has any.
        self.schedules: ScheduleRunner | None = None
        #: Deletes consumed records of repartition and other read-back topics (purge.py).
        self.purger: Purger | None = None
        self.tasks: list[SubtopologyTask] = []
        self._tables_fed_by: dict[str, list[TableRuntime]] = defaultdict(list)
        self._next_offsets: dict[TP, int] = {}
        # Sends not yet known to be acknowledged, by transactional id (None: no transactions).
        self._unconfirmed: dict[str | None, list[Sent]] = defaultdict(list)
        self._source_topics = {
            source.topic.name for sub in self.topology.subtopologies for source in sub.sources
        }
        self._inboxes: dict[str, asyncio.Queue[Fetched]] = {}
        # Bumped at the start of every rebalance (see assignment_epoch).
        self._epoch = 0
        # One past the last fetched offset of each source partition (for lag).
        self._fetched_to: dict[TP, int] = {}
        self.metrics = WorkerMetrics(app.id)
        self.faust = self._build_faust_app()
        self.metrics.observe_state(
            lag=self._lags, assigned=self._assigned, tables=self._table_stats, ready=self.is_ready
        )

    # --- building ------------------------------------------------------------------------

    @property
    def services(self) -> list[Any]:
        """The services a worker runs beside faust: global table replicas, tick writers,
        schedules, the purger of consumed internal records."""
        others = [s for s in (self.schedules, self.purger) if s is not None]
        return [*self.global_replicas, *self.tickers, *others]

    @property
    def data_dir(self) -> Path:
        """Where this worker keeps local state: ``state/<app-id>/worker-<web port>``."""
        return state_dir() / self.app.id / f"worker-{self.settings.web_port}"

    @property
    def url(self) -> str:
        """The URL other workers and clients reach this worker's web API at."""
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    @property
    def assignment_epoch(self) -> int:
        """A number that changes at the start of every rebalance of this worker's group."""
        return self._epoch

    @property
    def crashed(self) -> bool:
        """True once faust marked the app crashed (e.g. a fenced producer): it is stopping."""
        return self.faust._crashed.is_set()

    def is_ready(self) -> bool:
        """True once the worker is in the group, not rebalancing, and its tables recovered."""
        fapp = self.faust
        recovery = fapp.tables.recovery
        return (
            fapp.consumer_generation_id > 0
            and not fapp.rebalancing
            and not recovery.in_recovery
            and recovery.completed.is_set()
            and all(replica.restored.is_set() for replica in self.global_replicas)
        )

    def recovery_stalled(self) -> bool:
        """True while a rebalance waits for table recovery to pick it up.

        faust's recovery loop takes each rebalance's start signal within moments, even in
        the middle of a recovery; a signal that stays up means the loop is gone (see
        :class:`~streamflow.runtime.worker.CrashWatch`).
        """
        return self.faust.tables.recovery.signal_recovery_start.is_set()

    def holds(self, table: TableRuntime, partition: int) -> bool:
        """True if ``partition`` of ``table`` is assigned to this worker as active.

        Whether it is recovered is :meth:`is_ready` (true once every assigned partition is).
        """
        return self.faust.assignor.is_active(TP(table.changelog, partition))

    def _build_faust_app(self) -> faust.App:
        rocksdb.register()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        commit_interval = self.app.commit_interval or (
            EXACTLY_ONCE_COMMIT_INTERVAL if self.exactly_once else AT_LEAST_ONCE_COMMIT_INTERVAL
        )
        fapp = _FaustApp(
            self.app.id,
            broker=self.settings.broker,
            store=f"{rocksdb.STORE_SCHEME}://",
            datadir=str(self.data_dir),
            processing_guarantee=self.guarantee,
            topic_partitions=self.app.partitions,
            topic_replication_factor=1,
            # streamflow serves its own web API (streamflow.web); faust only needs the URL
            # to tell other workers where this one answers table queries.
            web_enabled=False,
            web_port=self.settings.web_port,
            web_bind=self.settings.web_host,
            web_host=self.settings.web_host,
            canonical_url=self.url,
            broker_commit_interval=commit_interval,
            consumer_auto_offset_reset="earliest",
            stream_buffer_maxsize=max(4 * self.app.batch_size, 4096),
            broker_commit_livelock_soft_timeout=600,
            producer_max_batch_size=512 * 1024,
            producer_linger_ms=5,
            table_cleanup_interval=3600,
        )
        fapp.streamflow_runtime = self
        for name, spec in self.app.global_tables.items():
            state = GlobalTableState(
                name,
                spec.key_codec,
                spec.value_codec,
                rocksdb_global_store(self.data_dir / "global" / f"{name}.db"),
            )
            self.global_tables[name] = state
            self.global_replicas.append(
                GlobalTableReplica(state, spec.topic.name, self.settings.bootstrap)
            )
        for store in self.topology.stores:
            self._add_table(fapp, store)
        for sub in self.topology.subtopologies:
            self._add_subtopology(fapp, sub)
        tick_topics = list(self.topology.ticked_processors)
        if tick_topics:
            self.tickers.append(Ticker(tick_topics, self._assigned, self.settings.bootstrap))
        if self.app.schedules:
            self.schedules = ScheduleRunner(
                self.app.schedules, fapp.is_leader, self.settings.bootstrap
            )
        purged = purged_topics(s.topic for sub in self.topology.subtopologies for s in sub.sources)
        if purged:
            self.purger = Purger(purged, self._assigned, self.app.id, self.settings.bootstrap)
        fapp.on_before_shutdown.connect(self._on_before_shutdown)
        fapp.on_partitions_revoked.connect(self._on_partitions_revoked)
        fapp.on_partitions_assigned.connect(self._on_partitions_assigned)
        return fapp

    def _add_table(self, fapp: faust.App, node) -> None:
        table = fapp.Table(
            node.store,
            partitions=self.app.partitions,
            key_type=bytes,  # bytes in, bytes out: faust's changelog serializers become "raw"
            value_type=bytes,
            help=f"streamflow table {node.store}",
        )
        self.tables[node.store] = TableRuntime(
            node,
            store=lambda t=table: t.data,
            changelog=table.changelog_topic.get_topic_name(),
            partitions=self.app.partitions,
        )

    def _faust_topic(self, fapp: faust.App, topic: Topic, *more: Topic):
        return fapp.topic(
            topic.name,
            *(t.name for t in more),
            key_serializer="raw",
            value_serializer="raw",
            partitions=topic.partitions or self.app.partitions,
            internal=topic.internal and all(t.internal for t in more),
            config=topic.config or None,
        )

    def _add_subtopology(self, fapp: faust.App, sub) -> None:
        failures = FailureRouter(self.app.id, sub, self.app.dead_letter_topic, self.metrics)
        task = SubtopologyTask(sub, self.tables, failures, global_tables=self.global_tables)
        for source in sub.sources:
            for node in sub.stores:
                self._tables_fed_by[source.topic.name].append(self.tables[node.store])
        self.tasks.append(task)
        # One agent subscribed to every source topic of the sub-topology: faust assigns
        # partition p of co-partitioned topics to one worker, with one producer for p.
        source = self._faust_topic(fapp, *(s.topic for s in sub.sources))
        batch_size = self.app.batch_size

        inbox: asyncio.Queue[Fetched] = asyncio.Queue(maxsize=INBOX_BATCHES)
        for each in sub.sources:
            self._inboxes[each.topic.name] = inbox

        async def run_subtopology(stream) -> None:
            # The agent only keeps faust subscribed to the topic and supervised; records
            # arrive in fetched batches through the inbox (see _install_fetch_routing).
            while True:
                fetched = [await inbox.get()]
                size = len(fetched[0].records)
                while size < batch_size and not inbox.empty():
                    fetched.append(inbox.get_nowait())
                    size += len(fetched[-1].records)
                if sub.source.retry_attempt:
                    await _wait_until_due(fetched)
                try:
                    await self._process(task, fetched)
                except Exception:
                    if self.crashed:
                        # Fenced or otherwise crashed: the worker is stopping (CrashWatch).
                        # Ending here keeps faust from restarting the agent mid-shutdown.
                        return
                    raise

        fapp.agent(source, name=f"{self.app.id}.subtopology-{sub.index}")(run_subtopology)

    def required_topics(self) -> list[tuple[str, int, dict[str, str]]]:
        """Every topic the app reads or writes, as ``(name, partitions, config)``.

        The worker creates the missing ones before it joins the group: the consumer only
        subscribes to topics that exist when it starts.
        """
        topics: dict[str, tuple[str, int, dict[str, str]]] = {}

        def add(topic: Topic) -> None:
            topics.setdefault(
                topic.name, (topic.name, topic.partitions or self.app.partitions, topic.config)
            )

        for sub in self.topology.subtopologies:
            for source in sub.sources:
                add(source.topic)
            for sink in sub.sinks:
                add(sink.topic)
        for spec in self.app.agents:
            if spec.node.sink is not None:
                add(spec.node.sink)
        # Topics agents and timers may send to (``await topic.send``) are declared ones.
        for topic in self.app.topics.values():
            add(topic)
        for spec in self.app.global_tables.values():
            add(spec.topic)
        for dead_letter_topic in {self.app.dead_letter_topic} | {
            sub.dead_letter_topic for sub in self.topology.subtopologies if sub.dead_letter_topic
        }:
            add(Topic(dead_letter_topic, key="bytes", value="bytes"))
        for table in self.tables.values():
            add(Topic(table.changelog, config={"cleanup.policy": "compact"}))
        return list(topics.values())

    # --- processing ------------------------------------------------------------------------

    async def _process(self, task: SubtopologyTask, fetched: Sequence[Fetched]) -> None:
        await self.faust.flow_control.acquire()  # not while tables recover or a rebalance runs
        for replica in self.global_replicas:  # global tables are restored before anything runs
            await replica.restored.wait()
        if self.fatal_error is not None:
            return  # stopping: process nothing more
        try:
            await self._process_batches(task, fetched)
        except ProcessingStopped as exc:
            self._stop(exc)

    def _stop(self, error: ProcessingStopped) -> None:
        """Stop the worker gracefully: commit what was processed before the failure."""
        self.fatal_error = error
        log.critical("Stopping the worker: %s", error)
        os.kill(os.getpid(), signal.SIGTERM)

    async def _process_batches(self, task: SubtopologyTask, fetched: Sequence[Fetched]) -> None:
        async with self.barrier:
            by_partition = self._fresh_records(fetched)
            # One sender per producer: the records of all partitions of this drain go to
            # the producers together, at the end (see BatchSender).
            senders: dict[str | None, BatchSender] = {}
            try:
                for partition, records in by_partition.items():
                    started = time.perf_counter()
                    transactional_id, producer = await self._producer_for(
                        task.source.name, partition
                    )
                    sender = senders.get(transactional_id)
                    if sender is None:
                        sender = senders[transactional_id] = BatchSender(
                            producer, on_send=self.metrics.records_produced
                        )
                    sent = await task.process(partition, records, sender)
                    self._unconfirmed[transactional_id].extend(sent)
                    seconds = time.perf_counter() - started
                    for topic, next_offset, count, oldest in _per_topic(task, records):
                        self.metrics.batch_processed(topic, partition, count, seconds, oldest)
                        # aiokafka's TopicPartition: these keys end up in its offset commit.
                        self._next_offsets[TopicPartition(topic, partition)] = next_offset
                    await asyncio.sleep(0)  # let table views and heartbeats in between
            finally:
                # Also when a later partition stopped the worker: what earlier partitions
                # produced must be sent before their offsets are committed.
                await asyncio.gather(*(sender.flush() for sender in senders.values()))

    def _fresh_records(self, fetched: Sequence[Fetched]) -> dict[int, list[ConsumedRecord]]:
        """Group fetched records by partition, leaving out any this worker must not process.

        Left out: records fetched before the latest rebalance, records of partitions no
        longer assigned, and records at offsets already processed or already taken from an
        earlier fetch of this drain (a seek back to the committed offsets after a rebalance
        fetches again what still waits in the inbox).
        """
        generation = self.faust.consumer_generation_id
        assignment = self.faust.consumer.assignment()
        by_tp: dict[Any, list[ConsumedRecord]] = defaultdict(list)
        taken: dict[Any, int] = {}  # one past the last record taken, per partition
        for batch in fetched:
            if batch.generation != generation or batch.tp not in assignment:
                continue
            next_offset = taken.get(batch.tp, self._next_offsets.get(batch.tp))
            records = batch.records
            if next_offset is not None and records[0].offset < next_offset:
                records = [r for r in records if r.offset >= next_offset]
            if not records:
                continue
            taken[batch.tp] = records[-1].offset + 1
            topic = batch.tp.topic
            by_tp[batch.tp].extend(
                ConsumedRecord(r.key, r.value, r.timestamp, r.offset, r.headers or (), topic)
                for r in records
            )
        by_partition: dict[int, list[list[ConsumedRecord]]] = defaultdict(list)
        for tp, records in by_tp.items():
            by_partition[tp.partition].append(records)
        # Records of co-partitioned topics interleave by timestamp, each topic's own order
        # kept (as Kafka Streams picks the partition whose next record is oldest).
        return {
            partition: lists[0]
            if len(lists) == 1
            else list(heapq.merge(*lists, key=lambda r: r.timestamp_ms))
            for partition, lists in by_partition.items()
        }

    def _install_stable_highwaters(self, consumer) -> None:
        """Recover tables up to the last committed record of their changelogs.

        Under exactly-once faust takes a changelog partition's highwater from the last stable
        offset aiokafka saw in a fetch response: ``None`` (highwater -1) for a partition not
        fetched since it was assigned. Recovery then takes the changelog for empty and skips
        it, so a table partition wiped because it was dirty (or one held before, now stale)
        is processed from what is on disk, and the wrong aggregates are committed; when
        faust does know an offset it raises ConsistencyError instead. The ends are asked
        of the broker instead, through a consumer of their own (asking through the worker's
        consumer disturbs its fetcher: partitions were seen never to be fetched after a
        rebalance), and are exact: see :mod:`streamflow.runtime.recovery_ends`.
        """
        if not self.exactly_once:
            return
        bootstrap = self.settings.bootstrap

        async def committed_highwaters(partitions):
            ends = await last_committed_ends(
                bootstrap, [TopicPartition(tp.topic, tp.partition) for tp in partitions]
            )
            return {TP(tp.topic, tp.partition): offset for tp, offset in ends.items()}

        consumer._thread._highwaters = committed_highwaters

    def _install_fetch_routing(self, consumer) -> None:
        """Hand fetched records of our source topics to the sub-topology inboxes in bulk.

        faust turns every fetched record into a message, an event and a task on its way to
        an agent; for batch processing, the records of one fetch go to the inbox as is.
        Records of other topics (none read by the app: changelogs, the leader topic) take
        faust's usual path.
        """
        wait_next_records = consumer._wait_next_records
        inboxes = self._inboxes

        async def unfetch(dropped: dict) -> None:
            # faust drops records fetched while its flow is paused and seeks back to the
            # committed offsets, but aiokafka's seek_to_committed leaves alone partitions
            # without a committed offset (or at 0): their dropped records would never be
            # fetched again. Seek each back to the first record dropped.
            for tp, tp_records in dropped.items():
                if tp_records:
                    await consumer.seek(tp, tp_records[0].offset)

        async def route(timeout: float):
            records, active_partitions = await wait_next_records(timeout)
            if not records:
                return records, active_partitions
            if not consumer.flow_active:
                await unfetch({tp: r for tp, r in records.items() if tp.topic in inboxes})
                return records, active_partitions
            # The generation once the fetch is back: a batch dropped as stale is one faust
            # seeks back over after the rebalance, so the records are fetched again.
            generation = self.faust.consumer_generation_id
            remaining = {}
            inactive = {}
            for tp, tp_records in records.items():
                inbox = inboxes.get(tp.topic)
                if inbox is None:
                    remaining[tp] = tp_records
                elif active_partitions is None or tp in active_partitions:
                    if tp_records:
                        await inbox.put(Fetched(generation, tp, tp_records))
                        self._fetched_to[tp] = tp_records[-1].offset + 1
                else:
                    inactive[tp] = tp_records
            if inactive:
                await unfetch(inactive)
            return remaining, active_partitions

        consumer._wait_next_records = route

    async def _producer_for(self, topic: str, partition: int) -> tuple[str | None, Any]:
        """The transactional id (None without transactions) and producer for a partition."""
        fapp = self.faust
        if not self.exactly_once:
            return None, (await fapp.maybe_start_producer())._ensure_producer()
        group = fapp.assignor.group_for_topic(topic)
        transactional_id = f"{fapp.conf.id}-{group}-{partition}"
        producer = fapp.producer._transaction_producers.get(transactional_id)
        if producer is None:
            raise RuntimeError(
                f"no transactional producer {transactional_id} for {topic}[{partition}]"
            )
        return transactional_id, producer

    # --- commits and rebalances ------------------------------------------------------------

    def _install_commit_barrier(self, consumer) -> None:
        commit = consumer.commit
        new_offset = consumer._new_offset
        pending_acks = consumer._filter_tps_with_pending_acks
        sources = self._source_topics

        # Batches are processed in offset order, so "one past the last processed record"
        # is the exact offset to commit; faust's ack bookkeeping is not used for these
        # topics (records skipped by read_committed and rebalances confuse it).
        def next_offset_to_commit(tp: TP) -> int | None:
            if tp.topic in sources:
                return self._next_offsets.get(tp)
            return new_offset(tp)

        def partitions_to_commit(topics=None):
            yield from (tp for tp in pending_acks(topics) if tp.topic not in sources)
            for tp in list(self._next_offsets):
                if topics is None or tp in topics or tp.topic in topics:
                    yield tp

        consumer._new_offset = next_offset_to_commit
        consumer._filter_tps_with_pending_acks = partitions_to_commit

        async def commit_outside_batches(*args, **kwargs):
            started = time.perf_counter()
            async with self.barrier:
                if not self.exactly_once:
                    # At-least-once: offsets may only move past records whose outputs the
                    # broker has acknowledged.
                    await self._confirm_sends(list(self._unconfirmed))
                committed = await commit(*args, **kwargs)
                if committed and not self.exactly_once:
                    self._checkpoint_all()
            if committed:
                self.metrics.commit_finished(time.perf_counter() - started)
            return committed

        consumer.commit = commit_outside_batches

    async def _confirm_sends(self, keys: Sequence[str | None]) -> None:
        """Wait until every send recorded under ``keys`` is acknowledged (raise if one failed)."""
        for key in keys:
            for sent in self._unconfirmed.pop(key, ()):
                await sent.wait()

    def _install_commit_hook(self, producer) -> None:
        if not hasattr(producer, "commit_transactions"):
            return

        async def commit_transaction(transactional_id, offsets, group_id, start_new):
            # aiokafka sends EndTxn without waiting for the records still queued or in
            # flight: they would land after the commit, outside any transaction, and be
            # rejected. Every send of the transaction must be acknowledged first; a failed
            # send raises here, so the transaction is never committed without it.
            await self._confirm_sends([transactional_id])
            async with producer._trn_locks[transactional_id]:
                transactional_producer = producer._transaction_producers.get(transactional_id)
                if transactional_producer is None:
                    log.warning("No producer to commit transaction %s", transactional_id)
                    return
                await transactional_producer.send_offsets_to_transaction(offsets, group_id)
                await transactional_producer.commit_transaction()
                if start_new:
                    await transactional_producer.begin_transaction()
            # A table partition is committed when the transaction of the source partition
            # that feeds it has committed; other sources' transactions say nothing about it.
            for tp in offsets:
                for table in self._tables_fed_by.get(tp.topic, ()):
                    if table.store.is_dirty(tp.partition):
                        table.checkpoint(tp.partition)

        async def commit_transactions(tid_to_offset_map, group_id, start_new_transaction=True):
            # One transaction per source partition, committed concurrently (faust commits
            # them one after the other, several round trips each). All of them must be over
            # before this returns, failed or not: the caller holds the commit barrier, and a
            # batch run while a transaction is still committing would add records to it that
            # the offsets being committed do not cover (committed output, offsets behind it).
            results = await asyncio.gather(
                *(
                    commit_transaction(tid, offsets, group_id, start_new_transaction)
                    for tid, offsets in tid_to_offset_map.items()
                ),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result

        producer.commit_transactions = commit_transactions

        abort_transaction = producer.abort_transaction

        async def count_aborts(transactional_id):
            self.metrics.transaction_aborted()
            return await abort_transaction(transactional_id)

        producer.abort_transaction = count_aborts

    def _checkpoint_all(self) -> None:
        for table in self.tables.values():
            for partition in table.store.open_partitions():
                if table.store.is_dirty(partition):
                    table.checkpoint(partition)

    async def _on_before_shutdown(self, sender: Any, **kwargs: Any) -> None:
        for task in self.tasks:
            await task.close()

    async def _on_partitions_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        self.metrics.rebalanced()

    async def _on_partitions_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        self._epoch += 1  # every rebalance starts here (eager protocol)
        for tp in revoked:
            self._next_offsets.pop(tp, None)
            self._fetched_to.pop(tp, None)
            # The revoked partition's producer is stopped and its open transaction aborted:
            # its unconfirmed sends will never be committed.
            if tp.topic in self._tables_fed_by or tp.topic in self._source_topics:
                group = self.faust.assignor.group_for_topic(tp.topic)
                self._unconfirmed.pop(f"{self.faust.conf.id}-{group}-{tp.partition}", None)
        for table in self.tables.values():
            table.forget()

    # --- state for metrics -------------------------------------------------------------------

    def _assigned(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.faust.consumer.assignment()]

    def _lags(self) -> dict[tuple[str, int], int | None]:
        """Records of each assigned source partition not processed yet.

        Lag is what the broker has beyond this worker's fetch position, plus what was
        fetched but is not processed yet. Measuring from the fetch position rather than the
        committed offset keeps transaction markers (which take offsets but hold no record)
        from showing as lag.
        """
        consumer = self.faust.consumer._thread._ensure_consumer()
        assignment = consumer._subscription.subscription.assignment
        lags: dict[tuple[str, int], int | None] = {}
        for tp in assignment.tps:
            if tp.topic not in self._source_topics:
                continue
            state = assignment.state_value(tp)
            if state.highwater is None or not state.has_valid_position:
                lags[tp.topic, tp.partition] = None
                continue
            unprocessed = self._fetched_to.get(tp, 0) - self._next_offsets.get(tp, 0)
            lag = max(0, state.highwater - state.position) + max(0, unprocessed)
            lags[tp.topic, tp.partition] = lag
        return lags

    def _table_stats(self) -> list[TableStats]:
        return [
            stat
            for table in self.tables.values()
            for stat in rocksdb_stats(table.name, table.store)
        ]
