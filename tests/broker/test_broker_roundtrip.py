"""Produce/consume round trips with every client, on both brokers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from aiokafka import AIOKafkaProducer
from broker_helpers import consume_all, create_topic


async def test_aiokafka_roundtrip_keys_headers_acks_all(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic, partitions=3)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip")
    await p.start()
    try:
        futs = [
            await p.send(
                topic,
                f"v{i}".encode(),
                key=f"k{i}".encode(),
                partition=i % 3,
                headers=[("h", b"x")],
            )
            for i in range(300)
        ]
        metas = await asyncio.gather(*futs)
    finally:
        await p.stop()
    assert sorted(m.offset for m in metas if m.partition == 0) == list(range(100))
    msgs = await consume_all(bootstrap, topic, expected=300, partitions=3)
    assert sorted(m.value for m in msgs) == sorted(f"v{i}".encode() for i in range(300))
    assert all(m.headers == (("h", b"x"),) for m in msgs)
    by_part = {}
    for m in msgs:
        by_part.setdefault(m.partition, []).append(m.offset)
    assert all(offs == sorted(offs) for offs in by_part.values())


async def test_aiokafka_acks_0_and_1(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    for acks in (0, 1):
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=acks)
        await p.start()
        try:
            for i in range(50):
                await p.send(topic, f"a{acks}-{i}".encode())
            await p.flush()
        finally:
            await p.stop()
    msgs = await consume_all(bootstrap, topic, expected=100)
    assert len(msgs) == 100


def test_kafka_python_roundtrip(bootstrap: str, topic: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(100):
        p.send(topic, f"kp{i}".encode(), partition=i % 2)
    p.flush()
    p.close()
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=8000,
    )
    got = []
    for m in c:
        got.append(m.value)
        if len(got) == 100:
            break
    c.close()
    assert sorted(got) == sorted(f"kp{i}".encode() for i in range(100))


def test_confluent_roundtrip_compressed(bootstrap: str, topic: str) -> None:
    import confluent_kafka as ck

    p = ck.Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "zstd"}
    )
    for i in range(200):
        p.produce(topic, f"ck{i}".encode(), key=b"k")
    assert p.flush(15) == 0
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 500,
        }
    )
    c.subscribe([topic])
    got = []
    import time

    deadline = time.monotonic() + 20
    while len(got) < 200 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append(m.value())
    c.close()
    assert got == [f"ck{i}".encode() for i in range(200)]


def _kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        pytest.fail("kcat is not installed: apt-get update && apt-get install -y kcat")
    return path


def test_kcat_produce_consume_metadata(bootstrap: str, topic: str) -> None:
    kcat = _kcat()
    lines = "".join(f"line{i}\n" for i in range(20))
    r = subprocess.run(
        [kcat, "-b", bootstrap, "-P", "-t", topic, "-X", "allow.auto.create.topics=true"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"line{i}" for i in range(20)]
    r = subprocess.run(
        [kcat, "-b", bootstrap, "-L", "-t", topic], capture_output=True, text=True, timeout=30
    )
    assert f'topic "{topic}" with 1 partitions' in r.stdout
