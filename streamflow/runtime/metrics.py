"""A worker's metrics: Prometheus exposition for scrapers, plain totals for the console.

Every :class:`WorkerMetrics` has its own registry, so several workers (or tests) can live
in one process, and every sample carries the label ``app``. Two kinds of metrics:

* **events** the runtime reports a batch, a commit or a rebalance at a time (counters and
  histograms, updated as they happen);
* **state** read only when scraped (lag, assignment, table sizes, readiness): the runtime
  hands over callables once, and nothing is computed between scrapes.

======================================================  ================================
``streamflow_records_consumed_total{topic,partition}``  records processed
``streamflow_records_produced_total{topic}``            records sent to output topics
``streamflow_dead_letters_total{topic,step}``           records sent to the dead letters
``streamflow_decode_errors_total{topic}``               those that failed to decode
``streamflow_late_records_total{topic,step}``           records late for every window
``streamflow_batch_processing_seconds{topic}``          histogram: time per batch
``streamflow_record_latency_seconds{topic}``            histogram: now - oldest record
``streamflow_commit_seconds``                           histogram: time per commit
``streamflow_transaction_aborts_total``                 aborted transactions
``streamflow_rebalances_total``                         rebalances seen
``streamflow_consumer_lag_records{topic,partition}``    records not yet processed
``streamflow_assigned_partitions{topic}``               partitions assigned
``streamflow_table_keys{table,partition}``              keys (RocksDB's estimate)
``streamflow_table_size_bytes{table,partition}``        SST files on disk
``streamflow_table_memtable_bytes{table,partition}``    memtables (unflushed writes)
``streamflow_worker_up``                                always 1
``streamflow_worker_ready``                             1 once ready to process, else 0
======================================================  ================================

Example:
    >>> metrics = WorkerMetrics("shop")
    >>> metrics.batch_processed("orders", 0, records=3, seconds=0.002, oldest_timestamp_ms=None)
    >>> metrics.totals()["consumed"]
    {'orders': 3}
    >>> body, content_type = metrics.render()
    >>> print(next(line for line in body.decode().splitlines()
    ...            if line.startswith("streamflow_records_consumed_total")))
    streamflow_records_consumed_total{app="shop",partition="0",topic="orders"} 3.0
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from streamflow.state.rocksdb import RocksDBStore

__all__ = ["TableStats", "WorkerMetrics", "rocksdb_stats"]

log = logging.getLogger(__name__)

# Batches take from well under a millisecond (a few small records) to seconds (big
# batches writing tables); commits are a few broker round trips.
_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# End-to-end latency spans milliseconds (keeping up) to hours (catching up on a backlog).
_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class TableStats:
    """Size of one partition of a table, as its store reports it (``None``: unknown).

    >>> stats = TableStats("user-spending-store", 3, keys=50, size_bytes=4096)
    >>> stats.keys, stats.memtable_bytes
    (50, None)
    """

    table: str
    partition: int
    keys: int | None
    size_bytes: int | None
    memtable_bytes: int | None = None


class WorkerMetrics:
    """One worker's metrics, in a registry of its own.

    The runtime calls the event hooks (a batch at a time, never per record) and hands over
    the state callables once with :meth:`observe_state`; a scrape renders everything with
    :meth:`render`, the console reads :meth:`totals`.

    >>> metrics = WorkerMetrics("shop", clock=lambda: 100.0)
    >>> metrics.batch_processed("orders", 1, records=2, seconds=0.01, oldest_timestamp_ms=99_500)
    >>> metrics.records_produced("summary", 2)
    >>> metrics.registry.get_sample_value(
    ...     "streamflow_record_latency_seconds_sum", {"app": "shop", "topic": "orders"})
    0.5
    """

    def __init__(self, app_id: str, *, clock: Callable[[], float] = time.time) -> None:
        """Metrics labelled ``app=<app_id>``; ``clock`` gives the current time in seconds."""
        self.app_id = app_id
        self.registry = CollectorRegistry()
        self._clock = clock
        self._consumed = self._metric(
            Counter,
            "streamflow_records_consumed_total",
            "Records consumed and processed, by source partition.",
            ("topic", "partition"),
        )
        self._produced = self._metric(
            Counter,
            "streamflow_records_produced_total",
            "Records sent to output and repartition topics.",
            ("topic",),
        )
        self._dead_letters = self._metric(
            Counter,
            "streamflow_dead_letters_total",
            "Records sent to the dead-letter topic, by source topic and failed step.",
            ("topic", "step"),
        )
        self._retries = self._metric(
            Counter,
            "streamflow_retries_total",
            "Failed records sent to a retry topic, by source topic and attempt.",
            ("topic", "attempt"),
        )
        self._late = self._metric(
            Counter,
            "streamflow_late_records_total",
            "Records that arrived after all their windows closed (dropped or dead-lettered), "
            "by source topic and windowed step.",
            ("topic", "step"),
        )
        self._decode_errors = self._metric(
            Counter,
            "streamflow_decode_errors_total",
            "Records whose key or value could not be decoded.",
            ("topic",),
        )
        self._batch_seconds = self._metric(
            Histogram,
            "streamflow_batch_processing_seconds",
            "Time to process one batch of a source partition and send all it produces.",
            ("topic",),
            buckets=_DURATION_BUCKETS,
        )
        self._latency = self._metric(
            Histogram,
            "streamflow_record_latency_seconds",
            "End-to-end latency: time between the oldest record of a batch being "
            "timestamped and the batch being processed.",
            ("topic",),
            buckets=_LATENCY_BUCKETS,
        )
        self._commit_seconds = self._metric(
            Histogram,
            "streamflow_commit_seconds",
            "Time to commit offsets (and transactions, under exactly-once).",
            buckets=_DURATION_BUCKETS,
        ).labels(app_id)
        self._aborts = self._metric(
            Counter, "streamflow_transaction_aborts_total", "Transactions aborted."
        ).labels(app_id)
        self._rebalances = self._metric(
            Counter, "streamflow_rebalances_total", "Consumer group rebalances seen."
        ).labels(app_id)
        self._state = _StateCollector(app_id)
        self.registry.register(self._state)

    def _metric(
        self, kind: type, name: str, documentation: str, labels: tuple[str, ...] = (), **kw
    ):
        return kind(name, documentation, ("app", *labels), registry=self.registry, **kw)

    # --- events ----------------------------------------------------------------------------

    def batch_processed(
        self,
        topic: str,
        partition: int,
        records: int,
        seconds: float,
        oldest_timestamp_ms: int | None,
    ) -> None:
        """Count a processed batch, its duration and the latency of its oldest record.

        A negative timestamp is Kafka's "no timestamp": no latency is recorded for it.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.batch_processed("orders", 0, records=10, seconds=0.003, oldest_timestamp_ms=-1)
        >>> metrics.totals()["consumed"]
        {'orders': 10}
        """
        self._consumed.labels(self.app_id, topic, str(partition)).inc(records)
        self._batch_seconds.labels(self.app_id, topic).observe(seconds)
        if oldest_timestamp_ms is not None and oldest_timestamp_ms >= 0:
            # Clocks of producers and workers differ: a record "from the future" is on time.
            latency = max(0.0, self._clock() - oldest_timestamp_ms / 1000)
            self._latency.labels(self.app_id, topic).observe(latency)

    def records_produced(self, topic: str, count: int) -> None:
        """Count ``count`` records sent to ``topic``.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.records_produced("summary", 4)
        >>> metrics.totals()["produced"]
        {'summary': 4}
        """
        self._produced.labels(self.app_id, topic).inc(count)

    def records_failed(self, topic: str, step: str, count: int) -> None:
        """Count ``count`` records of ``topic`` sent to the dead letters after ``step`` failed.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.records_failed("orders", "decode", 2)
        >>> metrics.registry.get_sample_value(
        ...     "streamflow_decode_errors_total", {"app": "shop", "topic": "orders"})
        2.0
        """
        self._dead_letters.labels(self.app_id, topic, step).inc(count)
        if step == "decode":
            self._decode_errors.labels(self.app_id, topic).inc(count)

    def records_late(self, topic: str, step: str, count: int) -> None:
        """Count ``count`` records of ``topic`` late for every window of ``step``.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.records_late("clicks", "per-minute", 3)
        >>> metrics.registry.get_sample_value(
        ...     "streamflow_late_records_total",
        ...     {"app": "shop", "topic": "clicks", "step": "per-minute"})
        3.0
        """
        self._late.labels(self.app_id, topic, step).inc(count)

    def record_retried(self, topic: str, attempt: int) -> None:
        """Count a failed record of ``topic`` sent to the retry topic of ``attempt``.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.record_retried("orders", 1)
        >>> metrics.registry.get_sample_value(
        ...     "streamflow_retries_total", {"app": "shop", "topic": "orders", "attempt": "1"})
        1.0
        """
        self._retries.labels(self.app_id, topic, str(attempt)).inc()

    def commit_finished(self, seconds: float) -> None:
        """Record the duration of one commit.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.commit_finished(0.02)
        >>> metrics.registry.get_sample_value("streamflow_commit_seconds_count", {"app": "shop"})
        1.0
        """
        self._commit_seconds.observe(seconds)

    def transaction_aborted(self, count: int = 1) -> None:
        """Count aborted transactions.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.transaction_aborted()
        >>> metrics.registry.get_sample_value(
        ...     "streamflow_transaction_aborts_total", {"app": "shop"})
        1.0
        """
        self._aborts.inc(count)

    def rebalanced(self) -> None:
        """Count a rebalance of the consumer group.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.rebalanced()
        >>> metrics.registry.get_sample_value("streamflow_rebalances_total", {"app": "shop"})
        1.0
        """
        self._rebalances.inc()

    # --- state read at scrape time ------------------------------------------------------------

    def observe_state(
        self,
        *,
        lag: Callable[[], Mapping[tuple[str, int], int | None]],
        assigned: Callable[[], Iterable[tuple[str, int]]],
        tables: Callable[[], Iterable[TableStats]],
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """Read these callables at every scrape (and in :meth:`totals`) from now on.

        ``lag`` maps each assigned ``(topic, partition)`` to the records not yet processed
        (``None`` while unknown); ``assigned`` lists the assigned partitions; ``tables``
        gives the stats of every open table partition (see :func:`rocksdb_stats`); ``ready``
        says whether the worker processes records (without it, no readiness is exported).
        A callable that raises leaves its metrics out of that scrape.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.observe_state(
        ...     lag=lambda: {("orders", 0): 5, ("orders", 1): 2},
        ...     assigned=lambda: [("orders", 0), ("orders", 1)],
        ...     tables=lambda: [TableStats("totals", 0, keys=7, size_bytes=1024)],
        ...     ready=lambda: True,
        ... )
        >>> metrics.totals()["lag"], metrics.totals()["table_keys"]
        ({'orders': 7}, {'totals': 7})
        """
        self._state.lag = lag
        self._state.assigned = assigned
        self._state.tables = tables
        self._state.ready = ready

    # --- reading -------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type.

        >>> body, content_type = WorkerMetrics("shop").render()
        >>> b'streamflow_worker_up{app="shop"} 1.0' in body, content_type.split(";")[0]
        (True, 'text/plain')
        """
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def totals(self) -> dict[str, dict]:
        """Plain totals for the console: per topic, per table.

        ``lag`` sums the partitions of a topic; it is ``None`` while any of them is unknown.

        >>> metrics = WorkerMetrics("shop")
        >>> metrics.batch_processed("orders", 0, records=3, seconds=0.001, oldest_timestamp_ms=None)
        >>> metrics.batch_processed("orders", 1, records=4, seconds=0.001, oldest_timestamp_ms=None)
        >>> metrics.totals()
        {'consumed': {'orders': 7}, 'produced': {}, 'lag': {}, 'table_keys': {}}
        """
        return {
            "consumed": _sum_by_label(self._consumed, "topic"),
            "produced": _sum_by_label(self._produced, "topic"),
            "lag": self._state.lag_by_topic(),
            "table_keys": self._state.keys_by_table(),
        }


def _sum_by_label(counter: Counter, label: str) -> dict[str, int]:
    sums: dict[str, int] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = sample.labels[label]
                sums[key] = sums.get(key, 0) + int(sample.value)
    return dict(sorted(sums.items()))


def _read(what: str, source: Callable[[], _T] | None, convert: Callable[[_T], _R]) -> _R | None:
    """``convert(source())``, or ``None`` when there is no source or it fails."""
    if source is None:
        return None
    try:
        return convert(source())
    except Exception:
        log.debug("Cannot read %s for metrics", what, exc_info=True)
        return None


@dataclass(frozen=True, slots=True)
class _Gauge:
    name: str
    documentation: str
    labels: tuple[str, ...] = ()

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=("app", *self.labels))


_UP = _Gauge("streamflow_worker_up", "1 while the worker runs.")
_READY = _Gauge(
    "streamflow_worker_ready",
    "1 while the worker processes records (joined its group, tables recovered), else 0.",
)
_LAG = _Gauge(
    "streamflow_consumer_lag_records",
    "Records of an assigned source partition not yet processed by this worker.",
    ("topic", "partition"),
)
_ASSIGNED = _Gauge(
    "streamflow_assigned_partitions", "Partitions assigned to this worker.", ("topic",)
)
_TABLE_KEYS = _Gauge(
    "streamflow_table_keys",
    "Keys in a table partition (RocksDB's estimate).",
    ("table", "partition"),
)
_TABLE_SIZE = _Gauge(
    "streamflow_table_size_bytes",
    "Size of a table partition's SST files on disk (writes still in memory excluded).",
    ("table", "partition"),
)
_TABLE_MEMTABLES = _Gauge(
    "streamflow_table_memtable_bytes",
    "Memory of a table partition's memtables (writes not yet flushed to SST files).",
    ("table", "partition"),
)
_STATE_GAUGES = (_UP, _READY, _LAG, _ASSIGNED, _TABLE_KEYS, _TABLE_SIZE, _TABLE_MEMTABLES)


class _StateCollector(Collector):
    """Reads the runtime's state callables when scraped."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.lag: Callable[[], Mapping[tuple[str, int], int | None]] | None = None
        self.assigned: Callable[[], Iterable[tuple[str, int]]] | None = None
        self.tables: Callable[[], Iterable[TableStats]] | None = None
        self.ready: Callable[[], bool] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Lets the registry reject a name clash without reading any state.
        return (gauge.family() for gauge in _STATE_GAUGES)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        app = self.app_id
        up = _UP.family()
        up.add_metric([app], 1)
        yield up
        ready = _read("readiness", self.ready, bool)
        if ready is not None:
            family = _READY.family()
            family.add_metric([app], int(ready))
            yield family
        lags = self._lags()
        if lags is not None:
            family = _LAG.family()
            for (topic, partition), lag in sorted(lags.items()):
                if lag is not None:
                    family.add_metric([app, topic, str(partition)], lag)
            yield family
        assigned = _read("assigned partitions", self.assigned, list)
        if assigned is not None:
            family = _ASSIGNED.family()
            per_topic = collections.Counter(topic for topic, _ in assigned)
            for topic, count in sorted(per_topic.items()):
                family.add_metric([app, topic], count)
            yield family
        tables = self._tables()
        if tables is not None:
            for gauge, field in (
                (_TABLE_KEYS, "keys"),
                (_TABLE_SIZE, "size_bytes"),
                (_TABLE_MEMTABLES, "memtable_bytes"),
            ):
                family = gauge.family()
                for stats in tables:
                    value = getattr(stats, field)
                    if value is not None:
                        family.add_metric([app, stats.table, str(stats.partition)], value)
                yield family

    def _lags(self) -> dict[tuple[str, int], int | None] | None:
        return _read("consumer lag", self.lag, dict)

    def _tables(self) -> list[TableStats] | None:
        tables = _read("table stats", self.tables, list)
        return None if tables is None else sorted(tables, key=lambda s: (s.table, s.partition))

    def lag_by_topic(self) -> dict[str, int | None]:
        totals: dict[str, int | None] = {}
        for (topic, _), lag in sorted((self._lags() or {}).items()):
            known = totals.get(topic, 0)
            totals[topic] = None if known is None or lag is None else known + lag
        return totals

    def keys_by_table(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for stats in self._tables() or ():
            if stats.keys is not None:
                totals[stats.table] = totals.get(stats.table, 0) + stats.keys
        return totals


# RocksDB's own properties (see rocksdb/include/rocksdb/db.h).
_ESTIMATE_NUM_KEYS = "rocksdb.estimate-num-keys"
_TOTAL_SST_FILES_SIZE = "rocksdb.total-sst-files-size"
_ESTIMATE_LIVE_DATA_SIZE = "rocksdb.estimate-live-data-size"
_CUR_SIZE_ALL_MEM_TABLES = "rocksdb.cur-size-all-mem-tables"


def rocksdb_stats(table_name: str, store: RocksDBStore) -> list[TableStats]:
    """The stats of every partition of ``store`` open on this worker, from RocksDB itself.

    Keys are RocksDB's estimate (exact for fresh inserts; overwrites and deletes not yet
    flushed or compacted skew it). The size is that of the SST files, or RocksDB's estimate of
    the live data where the former is not reported. A partition that cannot be read (closed
    by a rebalance meanwhile) is left out.

    >>> # metrics.observe_state(..., tables=lambda: rocksdb_stats("totals", table.store))
    """
    stats = []
    # A snapshot of faust's open databases by partition: nothing gets opened here (asking
    # for a partition's database opens it, even one revoked meanwhile).
    for partition, db in sorted(store._dbs.items()):
        try:
            size = db.property_int_value(_TOTAL_SST_FILES_SIZE)
            if size is None:
                size = db.property_int_value(_ESTIMATE_LIVE_DATA_SIZE)
            stats.append(
                TableStats(
                    table_name,
                    partition,
                    keys=db.property_int_value(_ESTIMATE_NUM_KEYS),
                    size_bytes=size,
                    memtable_bytes=db.property_int_value(_CUR_SIZE_ALL_MEM_TABLES),
                )
            )
        except Exception:
            log.debug("Cannot read RocksDB stats of %s[%d]", table_name, partition, exc_info=True)
    return stats
