"""Consumer groups: 3-member rebalancing and committed offsets."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from broker_helpers import create_topic
from conftest import unique


async def _wait_assignment(consumers, total: int, timeout: float = 30.0) -> list[set]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            await c.getmany(timeout_ms=50)
        sets = [set(c.assignment()) for c in consumers]
        union = set().union(*sets)
        if len(union) == total and sum(len(s) for s in sets) == total and all(sets):
            return sets
        await asyncio.sleep(0.05)
    raise AssertionError(f"no balanced assignment: {[c.assignment() for c in consumers]}")


async def test_three_member_rebalance(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic, partitions=6)
    group = unique("grp")
    consumers = []
    try:
        for _ in range(3):
            c = AIOKafkaConsumer(
                topic,
                bootstrap_servers=bootstrap,
                group_id=group,
                session_timeout_ms=6000,
                heartbeat_interval_ms=300,
                auto_offset_reset="earliest",
            )
            await c.start()
            consumers.append(c)
        sets = await _wait_assignment(consumers, 6)
        assert sorted(len(s) for s in sets) == [2, 2, 2]
        # one member leaves: the other two take over all six partitions
        await consumers.pop().stop()
        sets = await _wait_assignment(consumers, 6)
        assert sorted(len(s) for s in sets) == [3, 3]
    finally:
        for c in consumers:
            await c.stop()


async def test_member_failure_triggers_rebalance(embedded, topic: str) -> None:
    """A member that stops heartbeating is expired after its session timeout."""
    bootstrap = embedded.bootstrap
    await create_topic(bootstrap, topic, partitions=4)
    group = unique("grp")
    a = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=300,
    )
    b = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=300,
    )
    await a.start()
    await b.start()
    try:
        await _wait_assignment([a, b], 4)
        # silence b's heartbeats without a LeaveGroup
        b._coordinator._heartbeat_task.cancel()
        b._coordinator._coordination_task.cancel()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(a.assignment()) != 4:
            await a.getmany(timeout_ms=100)
        assert len(a.assignment()) == 4
    finally:
        await a.stop()
        with contextlib.suppress(Exception):
            await b.stop()


async def _commit_and_read(bootstrap: str, topic: str, group: str) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    for i in range(10):
        await p.send_and_wait(topic, f"m{i}".encode())
    await p.stop()
    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    got = 0
    while got < 7:
        for msgs in (await c.getmany(timeout_ms=500, max_records=7 - got)).values():
            got += len(msgs)
    await c.commit({TopicPartition(topic, 0): 7})
    await c.stop()


async def _committed(bootstrap: str, topic: str, group: str) -> int | None:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return await c.committed(TopicPartition(topic, 0))
    finally:
        await c.stop()


async def test_offset_commit_fetch(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    group = unique("grp")
    await _commit_and_read(bootstrap, topic, group)
    assert await _committed(bootstrap, topic, group) == 7


async def test_offsets_survive_restart(embedded, topic: str) -> None:
    await create_topic(embedded.bootstrap, topic)
    group = unique("grp")
    await _commit_and_read(embedded.bootstrap, topic, group)
    embedded.restart()
    assert await _committed(embedded.bootstrap, topic, group) == 7
    embedded.kill()
    embedded.start()
    assert await _committed(embedded.bootstrap, topic, group) == 7
