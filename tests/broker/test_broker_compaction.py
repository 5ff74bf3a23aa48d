"""Compaction (embedded broker; on Apache Kafka the cleaner is too slow to observe in a test)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from broker_helpers import consume_all, create_topic


async def test_compaction_keeps_latest_per_key(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    await create_topic(
        bootstrap, topic, configs={"cleanup.policy": "compact", "segment.bytes": "2048"}
    )
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    for i in range(300):
        await p.send_and_wait(topic, f"v{i}".encode(), key=f"k{i % 10}".encode())
    await p.send_and_wait(topic, None, key=b"k0")  # tombstone, kept (delete.retention.ms)
    for i in range(40):  # fill the active segment so the earlier ones are inactive
        await p.send_and_wait(topic, f"w{i}".encode(), key=f"other{i % 2}".encode())
    await p.stop()
    deadline = time.monotonic() + 15
    msgs: list = []
    previous: list = []
    while time.monotonic() < deadline:
        msgs = await consume_all(bootstrap, topic, idle=0.5)
        view = [(m.offset, m.value) for m in msgs]
        if len(msgs) < 150 and view == previous:
            break  # compaction done and stable
        previous = view
        await asyncio.sleep(0.7)
    assert len(msgs) < 150, f"nothing compacted ({len(msgs)} records)"
    latest: dict[bytes, bytes | None] = {}
    for m in msgs:
        latest[m.key] = m.value
    assert latest[b"k0"] is None
    for k in range(1, 10):
        assert latest[f"k{k}".encode()] == f"v{290 + k}".encode()
    offsets = [m.offset for m in msgs]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    # compacted data survives a restart (a new pass may only remove superseded records)
    embedded.restart()
    again = await consume_all(bootstrap, topic, idle=0.5)
    assert {(m.offset, m.value) for m in again} <= {(m.offset, m.value) for m in msgs}
    assert {m.key: m.value for m in again} == latest


async def test_compaction_of_transactional_data(embedded, topic: str) -> None:
    """Changelogs written under exactly-once (like faust's) get compacted too."""
    bootstrap = embedded.bootstrap
    await create_topic(
        bootstrap, topic, configs={"cleanup.policy": "compact", "segment.bytes": "2048"}
    )
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic}")
    await p.start()
    try:
        for n in range(30):
            await p.begin_transaction()
            for k in range(5):
                await p.send(topic, f"{n}".encode(), key=f"k{k}".encode())
            if n == 28:
                await p.abort_transaction()
            else:
                await p.commit_transaction()
    finally:
        await p.stop()
    filler = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await filler.start()
    for i in range(40):
        await filler.send_and_wait(topic, b"f" * 50, key=f"filler{i % 2}".encode())
    await filler.stop()
    deadline = time.monotonic() + 15
    raw: list = []
    while time.monotonic() < deadline:
        raw = await consume_all(bootstrap, topic, idle=0.5)
        if len(raw) < 100 and not any(m.value == b"28" for m in raw):
            break
        await asyncio.sleep(0.5)
    assert len(raw) < 100, f"nothing compacted ({len(raw)} records)"
    assert not any(m.value == b"28" for m in raw), "aborted records survived compaction"
    committed = await consume_all(bootstrap, topic, isolation_level="read_committed", idle=0.5)
    latest = {m.key: m.value for m in committed if m.key.startswith(b"k")}
    assert latest == {f"k{k}".encode(): b"29" for k in range(5)}
