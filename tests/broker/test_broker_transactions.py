"""Idempotent producer dedup, transactions (commit/abort visibility), producer fencing."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from broker_helpers import consume_all, create_topic, produce_raw, raw_request
from conftest import unique
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)


def _batch(pid: int, epoch: int, seq: int, values: list[bytes]) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, 0, pid, epoch, seq, 1 << 20)
    for i, v in enumerate(values):
        b.append(i, int(time.time() * 1000), None, v, [])
    return bytes(b.build())


async def test_idempotent_retry_is_deduplicated(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    init = raw_request(
        bootstrap,
        InitProducerIdRequest[0](transactional_id=None, transaction_timeout_ms=60000),
        InitProducerIdResponse,
        0,
    )
    assert init.error_code == 0
    pid, epoch = init.producer_id, init.producer_epoch
    first = _batch(pid, epoch, 0, [b"a", b"b", b"c"])
    assert produce_raw(bootstrap, topic, first) == (0, 0)
    # the same batch again (a retry after a lost response): not appended twice
    err, off = produce_raw(bootstrap, topic, first)
    assert err in (0, 46) and off in (0, -1)
    assert produce_raw(bootstrap, topic, _batch(pid, epoch, 3, [b"d"])) == (0, 3)
    # a gap in sequence numbers is rejected
    err, _ = produce_raw(bootstrap, topic, _batch(pid, epoch, 10, [b"x"]))
    assert err == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    msgs = await consume_all(bootstrap, topic, expected=4)
    assert [m.value for m in msgs] == [b"a", b"b", b"c", b"d"]


async def test_transaction_commit_and_abort_visibility(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("tx"))
    await p.start()
    try:
        async with p.transaction():
            for i in range(5):
                await p.send(topic, f"c{i}".encode())
        await p.begin_transaction()
        for i in range(5):
            await p.send(topic, f"a{i}".encode())
        await p.abort_transaction()
        async with p.transaction():
            await p.send(topic, b"c-last")
        # an open transaction blocks read_committed readers at the LSO
        await p.begin_transaction()
        await (await p.send(topic, b"open"))
        committed = await consume_all(bootstrap, topic, isolation_level="read_committed", idle=1.0)
        assert [m.value for m in committed] == [b"c0", b"c1", b"c2", b"c3", b"c4", b"c-last"]
        uncommitted = await consume_all(bootstrap, topic, expected=12)
        assert [m.value for m in uncommitted][-1] == b"open"
        await p.commit_transaction()
    finally:
        await p.stop()
    committed = await consume_all(bootstrap, topic, expected=7, isolation_level="read_committed")
    assert [m.value for m in committed][-1] == b"open"


async def test_producer_fencing(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    txn_id = unique("tx")
    old = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    await old.start()
    await old.begin_transaction()
    await (await old.send(topic, b"zombie"))
    new = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    await new.start()  # bumps the epoch and aborts the zombie's open transaction
    try:
        with pytest.raises(ProducerFenced):
            await old.send(topic, b"late")
            await old.commit_transaction()
        async with new.transaction():
            await new.send(topic, b"fresh")
    finally:
        await new.stop()
        with contextlib.suppress(Exception):
            await old.stop()
    committed = await consume_all(bootstrap, topic, expected=1, isolation_level="read_committed")
    assert [m.value for m in committed] == [b"fresh"]


def test_confluent_transactions_read_committed(bootstrap: str, topic: str) -> None:
    import confluent_kafka as ck

    p = ck.Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": unique("ctx"), "linger.ms": 5}
    )
    p.init_transactions(15)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, f"ok{i}".encode())
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, f"bad{i}".encode())
    p.flush(10)
    p.abort_transaction(15)
    p.begin_transaction()
    p.produce(topic, b"ok-last")
    p.commit_transaction(15)
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("cg"),
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == ck.KafkaError._PARTITION_EOF and got:
                break
            continue
        got.append(m.value())
    c.close()
    assert got == [f"ok{i}".encode() for i in range(10)] + [b"ok-last"]


async def test_transaction_timeout_aborts(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    await create_topic(bootstrap, topic)
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=unique("tx"), transaction_timeout_ms=1000
    )
    await p.start()
    try:
        await p.begin_transaction()
        await (await p.send(topic, b"abandoned"))
        deadline = time.monotonic() + 10
        msgs = []
        while time.monotonic() < deadline:
            # once aborted, the LSO moves past the data and the abort marker
            from aiokafka import AIOKafkaConsumer
            from aiokafka.structs import TopicPartition

            c = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
            await c.start()
            tp = TopicPartition(topic, 0)
            end = (await c.end_offsets([tp]))[tp]
            await c.stop()
            if end == 2:
                break
            await asyncio.sleep(0.2)
        assert end == 2
        msgs = await consume_all(bootstrap, topic, isolation_level="read_committed", idle=0.5)
        assert msgs == []
    finally:
        with contextlib.suppress(Exception):
            await p.stop()
