"""Repartition topics: kept without a time limit, purged once the group committed them.

The user-spending app re-keys orders by user through a repartition topic. Its orders are
timed months ago (event times of a replay): Kafka's time retention would delete such
records unread, so the topic has none; the worker deletes what its group committed
instead. On Apache Kafka the log start then is the committed offset; the embedded broker
deletes whole segments only, so there it never passes it.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamflow import avro
from streamflow.topics import Topic
from tests.integration.support import AppRun, check_summary, generate, wait_until

pytestmark = pytest.mark.kafka

MONTHS_AGO_MS = 1_700_000_000_000


async def _state(broker: str, group: str, topic: str) -> tuple[dict, dict, dict]:
    """(log start, committed offset) by partition, and the topic's configuration."""
    from aiokafka import AIOKafkaConsumer

    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker)
    await admin.start()
    await consumer.start()
    try:
        [described] = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        assert partitions, f"{topic} has no partitions"
        starts = await consumer.beginning_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        [config] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {name: value for name, value, *_ in config.resources[0][4]}
        return (
            {tp.partition: off for tp, off in starts.items()},
            {tp.partition: max(m.offset, 0) for tp, m in committed.items() if m is not None},
            entries,
        )
    finally:
        await consumer.stop()
        await admin.close()


def test_consumed_repartition_records_are_purged(broker, tmp_path, request):
    embedded = request.node.callspec.params["broker"] == "embedded"
    run = AppRun(broker, tmp_path / "state", extra_env={"STREAMFLOW_PURGE_INTERVAL": "1"})
    orders = generate(600, 6, seed=91)
    codec = Topic("orders", key="str", value=avro("order_event")).value_codec
    run.send_records(
        run.orders_topic,
        [
            (o["order_id"].encode(), codec.encode(codec.from_json(o)), MONTHS_AGO_MS + i)
            for i, o in enumerate(orders)
        ],
    )
    repartition = f"{run.app_id}-orders-by-user-repartition"
    worker = run.worker().start()
    try:
        paid = sum(order["status"] == "PAID" for order in orders)
        summary = run.wait_for_records(run.summary_topic, paid)
        check_summary(orders, summary)

        def purged() -> bool:
            starts, committed, _ = asyncio.run(_state(broker, run.app_id, repartition))
            assert all(starts[p] <= committed.get(p, 0) for p in starts), (starts, committed)
            return embedded or starts == committed

        wait_until(purged, "the repartition topic purged up to the committed offsets", 60)
        _, committed, config = asyncio.run(_state(broker, run.app_id, repartition))
        assert sum(committed.values()) == paid
        assert config["retention.ms"] == "-1" and config["cleanup.policy"] == "delete"
    finally:
        assert worker.stop() == 0, worker.log()
