"""Worker metrics: exact samples in the exposition, scrape-time state, RocksDB stats, totals."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from streamflow.runtime.metrics import TableStats, WorkerMetrics, rocksdb_stats

NOW = 1_700_000_000.0


def scrape(metrics: WorkerMetrics) -> dict[tuple[str, frozenset], float]:
    """Every sample of a rendered scrape, by name and labels."""
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def labels(**values: str) -> frozenset:
    return frozenset(values.items())


def family_names(metrics: WorkerMetrics) -> set[str]:
    """The metric families of a rendered scrape, without counters' creation times."""
    body, _ = metrics.render()
    return {
        family.name
        for family in text_string_to_metric_families(body.decode())
        if not family.name.endswith("_created")
    }


def test_events_render_as_exact_samples():
    metrics = WorkerMetrics("shop", clock=lambda: NOW)
    metrics.batch_processed("orders", 0, records=5, seconds=0.004, oldest_timestamp_ms=None)
    metrics.batch_processed("orders", 0, records=3, seconds=0.02, oldest_timestamp_ms=None)
    metrics.batch_processed("orders", 2, records=7, seconds=0.3, oldest_timestamp_ms=None)
    metrics.records_produced("summary", 9)
    metrics.records_produced("summary", 1)
    metrics.records_failed("orders", "decode", 2)
    metrics.records_failed("orders", "filter-2", 1)
    metrics.commit_finished(0.03)
    metrics.transaction_aborted()
    metrics.transaction_aborted(2)
    metrics.rebalanced()

    samples = scrape(metrics)

    consumed = "streamflow_records_consumed_total"
    assert samples[consumed, labels(app="shop", topic="orders", partition="0")] == 8
    assert samples[consumed, labels(app="shop", topic="orders", partition="2")] == 7
    produced = "streamflow_records_produced_total"
    assert samples[produced, labels(app="shop", topic="summary")] == 10
    dead = "streamflow_dead_letters_total"
    assert samples[dead, labels(app="shop", topic="orders", step="decode")] == 2
    assert samples[dead, labels(app="shop", topic="orders", step="filter-2")] == 1
    # Only the decode failures count as decode errors.
    assert samples["streamflow_decode_errors_total", labels(app="shop", topic="orders")] == 2
    batch = labels(app="shop", topic="orders")
    assert samples["streamflow_batch_processing_seconds_count", batch] == 3
    assert samples["streamflow_batch_processing_seconds_sum", batch] == pytest.approx(0.324)
    bucket = "streamflow_batch_processing_seconds_bucket"
    assert samples[bucket, labels(app="shop", topic="orders", le="0.005")] == 1
    assert samples[bucket, labels(app="shop", topic="orders", le="0.025")] == 2
    assert samples[bucket, labels(app="shop", topic="orders", le="+Inf")] == 3
    assert samples["streamflow_commit_seconds_count", labels(app="shop")] == 1
    assert samples["streamflow_commit_seconds_sum", labels(app="shop")] == pytest.approx(0.03)
    assert samples["streamflow_transaction_aborts_total", labels(app="shop")] == 3
    assert samples["streamflow_rebalances_total", labels(app="shop")] == 1
    assert samples["streamflow_worker_up", labels(app="shop")] == 1


def test_record_latency_is_now_minus_the_oldest_timestamp():
    metrics = WorkerMetrics("shop", clock=lambda: NOW)
    oldest_ms = int(NOW * 1000) - 1500
    metrics.batch_processed("orders", 0, records=4, seconds=0.01, oldest_timestamp_ms=oldest_ms)
    # A producer clock ahead of ours: on time, not negative.
    metrics.batch_processed(
        "orders", 1, records=1, seconds=0.01, oldest_timestamp_ms=int(NOW) * 1000 + 60_000
    )
    # No timestamp at all (none given, or Kafka's -1): nothing to measure.
    metrics.batch_processed("orders", 1, records=1, seconds=0.01, oldest_timestamp_ms=None)
    metrics.batch_processed("orders", 1, records=1, seconds=0.01, oldest_timestamp_ms=-1)

    samples = scrape(metrics)

    series = labels(app="shop", topic="orders")
    assert samples["streamflow_record_latency_seconds_count", series] == 2
    assert samples["streamflow_record_latency_seconds_sum", series] == pytest.approx(1.5)
    bucket = "streamflow_record_latency_seconds_bucket"
    assert samples[bucket, labels(app="shop", topic="orders", le="0.005")] == 1
    assert samples[bucket, labels(app="shop", topic="orders", le="1.0")] == 1
    assert samples[bucket, labels(app="shop", topic="orders", le="2.5")] == 2


def test_state_is_read_at_each_scrape():
    lag = {("orders", 0): 12, ("orders", 1): None, ("orders-by-user-repartition", 0): 0}
    assigned = [("orders", 0), ("orders", 1), ("orders-by-user-repartition", 0)]
    tables = [
        TableStats("totals", 0, keys=40, size_bytes=8192, memtable_bytes=2048),
        TableStats("totals", 1, keys=None, size_bytes=None),
    ]
    ready = [False]
    metrics = WorkerMetrics("shop")
    metrics.observe_state(
        lag=lambda: lag, assigned=lambda: assigned, tables=lambda: tables, ready=lambda: ready[0]
    )

    samples = scrape(metrics)

    lag_name = "streamflow_consumer_lag_records"
    assert samples[lag_name, labels(app="shop", topic="orders", partition="0")] == 12
    assert (
        samples[lag_name, labels(app="shop", topic="orders-by-user-repartition", partition="0")]
        == 0
    )
    # Unknown lag is left out, not reported as zero.
    assert (lag_name, labels(app="shop", topic="orders", partition="1")) not in samples
    assigned_name = "streamflow_assigned_partitions"
    assert samples[assigned_name, labels(app="shop", topic="orders")] == 2
    assert samples[assigned_name, labels(app="shop", topic="orders-by-user-repartition")] == 1
    partition0 = labels(app="shop", table="totals", partition="0")
    assert samples["streamflow_table_keys", partition0] == 40
    assert samples["streamflow_table_size_bytes", partition0] == 8192
    assert samples["streamflow_table_memtable_bytes", partition0] == 2048
    partition1 = labels(app="shop", table="totals", partition="1")
    assert ("streamflow_table_keys", partition1) not in samples
    assert samples["streamflow_worker_ready", labels(app="shop")] == 0

    # The next scrape sees the state as it is then, with no call in between.
    lag[("orders", 1)] = 3
    assigned.pop()
    ready[0] = True
    samples = scrape(metrics)

    assert samples[lag_name, labels(app="shop", topic="orders", partition="1")] == 3
    assert (assigned_name, labels(app="shop", topic="orders-by-user-repartition")) not in samples
    assert samples["streamflow_worker_ready", labels(app="shop")] == 1


def test_a_failing_state_callable_leaves_out_only_its_own_metrics():
    def broken():
        raise RuntimeError("consumer is restarting")

    metrics = WorkerMetrics("shop")
    metrics.observe_state(
        lag=broken,
        assigned=lambda: [("orders", 0)],
        # Lazy: fails only while being read.
        tables=lambda: (stats for stats in [TableStats("totals", 0, 5, 100)] if broken()),
        ready=lambda: True,
    )

    names = family_names(metrics)

    assert "streamflow_consumer_lag_records" not in names
    assert "streamflow_table_keys" not in names
    assert {"streamflow_assigned_partitions", "streamflow_worker_ready"} <= names
    assert metrics.totals()["lag"] == {}
    assert metrics.totals()["table_keys"] == {}


def test_before_state_is_observed_only_liveness_is_exported():
    metrics = WorkerMetrics("shop")
    metrics.records_produced("summary", 1)

    state_families = family_names(metrics) - {
        "streamflow_records_produced",
        "streamflow_records_consumed",
        "streamflow_dead_letters",
        "streamflow_retries",
        "streamflow_decode_errors",
        "streamflow_late_records",
        "streamflow_batch_processing_seconds",
        "streamflow_record_latency_seconds",
        "streamflow_commit_seconds",
        "streamflow_transaction_aborts",
        "streamflow_rebalances",
    }

    assert state_families == {"streamflow_worker_up"}


def test_every_sample_is_named_and_labelled_by_convention():
    metrics = WorkerMetrics("shop")
    metrics.batch_processed("orders", 0, records=1, seconds=0.001, oldest_timestamp_ms=1)
    metrics.records_failed("orders", "decode", 1)
    metrics.observe_state(
        lag=lambda: {("orders", 0): 1},
        assigned=lambda: [("orders", 0)],
        tables=lambda: [TableStats("totals", 0, 1, 1, 1)],
        ready=lambda: True,
    )
    body, content_type = metrics.render()

    families = list(text_string_to_metric_families(body.decode()))

    assert content_type.startswith("text/plain;")
    assert len([family for family in families if not family.name.endswith("_created")]) == 18
    assert "streamflow_decode_errors_total" in {
        sample.name for f in families for sample in f.samples
    }
    for family in families:
        assert family.name.startswith("streamflow_")
        if family.type == "counter":
            assert {sample.name for sample in family.samples} <= {family.name + "_total"}
        for sample in family.samples:
            assert sample.labels["app"] == "shop"


def test_two_workers_in_one_process_keep_their_own_metrics():
    first = WorkerMetrics("shop")
    second = WorkerMetrics("shop")  # the same app id too: registries, not names, separate them
    other = WorkerMetrics("billing")
    first.batch_processed("orders", 0, records=5, seconds=0.001, oldest_timestamp_ms=None)
    second.batch_processed("orders", 0, records=2, seconds=0.001, oldest_timestamp_ms=None)
    other.observe_state(lag=lambda: {}, assigned=lambda: [("invoices", 0)], tables=list)

    series = (
        "streamflow_records_consumed_total",
        labels(app="shop", topic="orders", partition="0"),
    )

    assert scrape(first)[series] == 5
    assert scrape(second)[series] == 2
    assert series not in scrape(other)
    invoices = ("streamflow_assigned_partitions", labels(app="billing", topic="invoices"))
    assert scrape(other)[invoices] == 1
    assert invoices not in scrape(first)
    assert REGISTRY.get_sample_value(series[0], dict(series[1])) is None


def test_totals_sum_per_topic_and_per_table():
    metrics = WorkerMetrics("shop")
    metrics.batch_processed("orders", 0, records=5, seconds=0.001, oldest_timestamp_ms=None)
    metrics.batch_processed("orders", 3, records=6, seconds=0.001, oldest_timestamp_ms=None)
    metrics.batch_processed("payments", 1, records=1, seconds=0.001, oldest_timestamp_ms=None)
    metrics.records_produced("summary", 4)
    metrics.observe_state(
        lag=lambda: {
            ("orders", 0): 10,
            ("orders", 3): 5,
            ("payments", 0): 7,
            ("payments", 1): None,
        },
        assigned=lambda: [],
        tables=lambda: [
            TableStats("totals", 0, keys=3, size_bytes=0),
            TableStats("totals", 3, keys=4, size_bytes=0),
            TableStats("counts", 1, keys=None, size_bytes=0),
            TableStats("counts", 2, keys=9, size_bytes=0),
        ],
    )

    totals = metrics.totals()

    assert totals == {
        "consumed": {"orders": 11, "payments": 1},
        "produced": {"summary": 4},
        # A topic with any partition's lag unknown has an unknown lag.
        "lag": {"orders": 15, "payments": None},
        "table_keys": {"counts": 9, "totals": 7},
    }


def test_rocksdb_stats_reports_keys_and_sizes_of_open_partitions(store):
    assert rocksdb_stats("totals", store) == []
    store.write_raw(2, {b"user-%d" % i: b"x" * 100 for i in range(50)})
    store.write_raw(0, {b"user-a": b"1"})

    before = {stats.partition: stats for stats in rocksdb_stats("totals", store)}

    assert sorted(before) == [0, 2]
    assert before[2].table == "totals"
    assert before[2].keys == 50
    assert before[0].keys == 1
    # Not flushed yet: everything is in the memtables, nothing on disk.
    assert before[2].size_bytes == 0
    assert before[2].memtable_bytes > 0

    store.write_raw(2, {b"user-%d" % i: b"y" * 100 for i in range(50, 80)})
    store._db_for_partition(2).flush()
    after = {stats.partition: stats for stats in rocksdb_stats("totals", store)}

    assert after[2].keys == 80
    assert after[2].size_bytes > 80 * 100 // 10  # compressed, but not nothing
    assert after[0] == before[0]


def test_rocksdb_stats_leave_out_a_partition_closed_meanwhile(store):
    store.write_raw(0, {b"k": b"v"})
    store.write_raw(1, {b"k": b"v"})
    store._db_for_partition(1).close()

    assert [stats.partition for stats in rocksdb_stats("totals", store)] == [0]


def test_rocksdb_stats_feed_the_table_metrics(store):
    store.write_raw(3, {b"a": b"1", b"b": b"2", b"c": b"3"})
    metrics = WorkerMetrics("shop")
    metrics.observe_state(
        lag=dict, assigned=list, tables=lambda: rocksdb_stats("totals", store), ready=None
    )

    samples = scrape(metrics)
    store.write_raw(3, {b"d": b"4"})

    series = ("streamflow_table_keys", labels(app="shop", table="totals", partition="3"))
    assert samples[series] == 3
    assert scrape(metrics)[series] == 4
    assert metrics.totals()["table_keys"] == {"totals": 4}
