"""Admin-ish APIs (configs, topic deletion, offsets by timestamp) and retention."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition
from broker_helpers import consume_all, create_topic


async def test_describe_configs_and_delete_topic(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic, configs={"cleanup.policy": "compact"})
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {c[0]: c[1] for r in res for c in r.resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
        assert "retention.ms" in entries
        await admin.delete_topics([topic])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if topic not in await admin.list_topics():
                break
            await asyncio.sleep(0.2)
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


async def test_list_offsets_by_timestamp(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    base = int(time.time() * 1000) - 100_000
    for i in range(10):
        await p.send_and_wait(topic, f"m{i}".encode(), timestamp_ms=base + i * 1000)
    await p.stop()
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        found = await c.offsets_for_times({tp: base + 4500})
        assert found[tp].offset == 5
        assert found[tp].timestamp == base + 5000
        assert (await c.offsets_for_times({tp: base + 60_000}))[tp] is None
        assert (await c.beginning_offsets([tp]))[tp] == 0
        assert (await c.end_offsets([tp]))[tp] == 10
    finally:
        await c.stop()


async def test_time_retention_drops_old_segments(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    await create_topic(bootstrap, topic, configs={"retention.ms": "60000", "segment.bytes": "1024"})
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    old = int(time.time() * 1000) - 3_600_000
    for _ in range(50):
        await p.send_and_wait(topic, b"o" * 100, timestamp_ms=old)
    for i in range(5):
        await p.send_and_wait(topic, f"new{i}".encode())
    await p.stop()
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    tp = TopicPartition(topic, 0)
    deadline = time.monotonic() + 10
    start = 0
    while time.monotonic() < deadline:
        start = (await c.beginning_offsets([tp]))[tp]
        if start >= 40:
            break
        await asyncio.sleep(0.3)
    await c.stop()
    assert start >= 40
    msgs = await consume_all(bootstrap, topic, idle=0.5)
    assert [m.value for m in msgs][-5:] == [f"new{i}".encode() for i in range(5)]


async def test_size_retention_keeps_the_partition_bounded(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    await create_topic(
        bootstrap, topic, configs={"retention.bytes": "3000", "segment.bytes": "1024"}
    )
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    for i in range(60):
        await p.send_and_wait(topic, f"{i}".encode() * 40)
    await p.stop()
    deadline = time.monotonic() + 10
    msgs: list = []
    while time.monotonic() < deadline:
        msgs = await consume_all(bootstrap, topic, idle=0.5)
        if msgs and msgs[0].offset > 0 and sum(len(m.value) for m in msgs) < 6000:
            break
        await asyncio.sleep(0.3)
    assert msgs and msgs[0].offset > 0, "nothing was deleted"
    assert msgs[-1].offset == 59
    assert sum(len(m.value) for m in msgs) < 6000
