"""Consumer groups: 3-member rebalancing, committed offsets, groups across restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from broker_helpers import create_topic
from conftest import unique

from streamflow.broker.groups import GroupCoordinator


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


MEMBER_SCRIPT = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer

async def main():
    c = AIOKafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3],
                         session_timeout_ms=6000, heartbeat_interval_ms=300)
    await c.start()
    while True:
        await c.getmany(timeout_ms=200)
        if c.assignment():
            print("assigned", flush=True)

asyncio.run(main())
"""


async def test_member_failure_triggers_rebalance(bootstrap: str, topic: str) -> None:
    """A member killed with SIGKILL (no LeaveGroup) is expired after its session timeout."""
    await create_topic(bootstrap, topic, partitions=4)
    group = unique("grp")
    a = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=300,
    )
    await a.start()
    proc = subprocess.Popen(
        [sys.executable, "-c", MEMBER_SCRIPT, bootstrap, topic, group],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(a.assignment()) != 2:
            await a.getmany(timeout_ms=100)
        assert len(a.assignment()) == 2, "the two members never shared the partitions"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(a.assignment()) != 4:
            await a.getmany(timeout_ms=100)
        assert len(a.assignment()) == 4
    finally:
        proc.kill()
        proc.wait()
        await a.stop()


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


async def test_mixed_client_group(bootstrap: str, topic: str) -> None:
    """aiokafka, kafka-python and librdkafka members share one group (opaque metadata)."""
    import threading

    import confluent_kafka as ck
    from kafka import KafkaConsumer

    await create_topic(bootstrap, topic, partitions=6)
    group = unique("mixed")
    stop = threading.Event()
    owned: dict[str, set] = {"kafka-python": set(), "librdkafka": set()}

    def kafka_python_member() -> None:
        c = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            session_timeout_ms=10000,
            heartbeat_interval_ms=300,
        )
        try:
            while not stop.is_set():
                c.poll(timeout_ms=100)
                owned["kafka-python"] = {tp.partition for tp in c.assignment()}
        finally:
            c.close()

    def librdkafka_member() -> None:
        c = ck.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "partition.assignment.strategy": "roundrobin",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 300,
            }
        )
        c.subscribe([topic])
        try:
            while not stop.is_set():
                c.poll(0.1)
                owned["librdkafka"] = {tp.partition for tp in c.assignment()}
        finally:
            c.close()

    threads = [threading.Thread(target=f) for f in (kafka_python_member, librdkafka_member)]
    for t in threads:
        t.start()
    a = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, heartbeat_interval_ms=300
    )
    await a.start()
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            await a.getmany(timeout_ms=100)
            sets = [{tp.partition for tp in a.assignment()}, *owned.values()]
            if all(len(s) == 2 for s in sets) and set().union(*sets) == set(range(6)):
                break
        assert all(len(s) == 2 for s in sets), sets
        assert set().union(*sets) == set(range(6))
    finally:
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join, 20)
        await a.stop()


async def test_a_stable_generation_is_restored_after_a_restart(tmp_path) -> None:
    coordinator = GroupCoordinator(state_dir=tmp_path)
    joined = await coordinator.join("g", "", "c1", 10000, 10000, "consumer", [("range", b"m")])
    await coordinator.sync("g", joined.generation, joined.member_id, {joined.member_id: b"a"})

    restarted = GroupCoordinator(state_dir=tmp_path)
    assert restarted.heartbeat("g", joined.generation, joined.member_id) == 0
    assert await restarted.sync("g", joined.generation, joined.member_id, {}) == (0, b"a")
    assert restarted.leave("g", joined.member_id) == 0
    assert GroupCoordinator(state_dir=tmp_path).groups == {}, "an emptied group stays empty"


async def test_members_keep_their_partitions_across_a_broker_kill(embedded, topic: str) -> None:
    """No rebalance after the broker comes back: each member keeps its generation."""
    await create_topic(embedded.bootstrap, topic, partitions=4)
    group = unique("grp")
    consumers = [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=embedded.bootstrap,
            group_id=group,
            session_timeout_ms=10000,
            heartbeat_interval_ms=300,
        )
        for _ in range(2)
    ]
    for consumer in consumers:
        await consumer.start()
    try:
        before = await _wait_assignment(consumers, 4)
        generations = [c._coordinator.generation for c in consumers]
        embedded.kill()
        embedded.start()
        deadline = time.monotonic() + 5  # well past a heartbeat or two on the new broker
        while time.monotonic() < deadline:
            for consumer in consumers:
                await consumer.getmany(timeout_ms=100)
        assert [c._coordinator.generation for c in consumers] == generations
        assert [set(c.assignment()) for c in consumers] == before
    finally:
        for consumer in consumers:
            await consumer.stop()
