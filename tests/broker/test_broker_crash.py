"""Embedded-broker durability: kill -9 under transactional load, torn tails, restarts."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiokafka import AIOKafkaProducer
from broker_helpers import consume_all, create_topic
from conftest import unique

from streamflow.broker.records import iter_batches


async def _txn_load(
    bootstrap: str,
    topic: str,
    txn_id: str,
    acked: list[int],
    aborted: list[int],
    stop: asyncio.Event,
) -> None:
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=txn_id,
        request_timeout_ms=3000,
        retry_backoff_ms=50,
    )
    await p.start()
    n = 0
    try:
        while not stop.is_set():
            await p.begin_transaction()
            for i in range(20):
                await p.send(topic, f"{n}:{i}".encode(), partition=i % 2)
            if n % 4 == 3:
                await p.abort_transaction()
                aborted.append(n)
            else:
                await p.commit_transaction()
                acked.append(n)
            n += 1
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.stop(), 5)


async def test_kill9_under_transactional_load(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    await create_topic(bootstrap, topic, partitions=2)
    txn_id = unique("crash-tx")
    acked: list[int] = []
    aborted: list[int] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_txn_load(bootstrap, topic, txn_id, acked, aborted, stop))
    await asyncio.sleep(2.0)
    embedded.kill()
    stop.set()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, 4)
    assert len(acked) >= 3, "load generator made no progress"
    embedded.start()
    # the same transactional id again: InitProducerId aborts the interrupted transaction
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    await p.start()
    await p.stop()
    msgs = await consume_all(
        bootstrap, topic, isolation_level="read_committed", partitions=2, timeout=20, idle=2.0
    )
    by_txn: dict[int, set[int]] = {}
    for m in msgs:
        n, i = map(int, m.value.decode().split(":"))
        by_txn.setdefault(n, set()).add(i)
    for n in acked:
        assert by_txn.get(n) == set(range(20)), f"acknowledged transaction {n} lost"
    for n in aborted:
        assert n not in by_txn, f"aborted transaction {n} visible"
    for n, items in by_txn.items():
        assert items == set(range(20)), f"transaction {n} partially visible"
    assert len(msgs) == 20 * len(by_txn)


def _logical_end(data: bytes | bytearray) -> int:
    """End of the last complete batch (segment files may carry zero-filled preallocation)."""
    batches = list(iter_batches(data))
    return batches[-1].end if batches else 0


def _segment(data_dir: Path, topic: str) -> Path:
    return data_dir / "topics" / topic / "0" / ("0" * 20 + ".log")


async def _write_then_kill(embedded, topic: str, count: int) -> Path:
    """Produce ``m0..m{count-1}`` with acks=all, kill -9 the broker, return the segment."""
    await create_topic(embedded.bootstrap, topic)
    p = AIOKafkaProducer(bootstrap_servers=embedded.bootstrap, acks="all")
    await p.start()
    for i in range(count):
        await p.send_and_wait(topic, f"m{i}".encode())
    await p.stop()
    embedded.kill()
    return _segment(embedded.data_dir, topic)


async def test_torn_tail_is_truncated(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    seg = await _write_then_kill(embedded, topic, 10)
    data = seg.read_bytes()
    end = _logical_end(data)
    with open(seg, "r+b") as f:  # a partial (torn) batch right after the last complete one
        f.seek(end)
        f.write(data[: end // 20 * 2 + 30])
    embedded.start()
    msgs = await consume_all(bootstrap, topic, expected=10)
    assert [m.value for m in msgs] == [f"m{i}".encode() for i in range(10)]
    assert "truncating" in embedded.log_tail(20000)
    # the log keeps working after recovery, offsets stay contiguous
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    md = await p.send_and_wait(topic, b"after")
    await p.stop()
    assert md.offset == 10
    msgs = await consume_all(bootstrap, topic, expected=11)
    assert [m.offset for m in msgs] == list(range(11))


async def test_corrupt_last_batch_is_not_served(embedded, topic: str) -> None:
    bootstrap = embedded.bootstrap
    seg = await _write_then_kill(embedded, topic, 5)
    data = bytearray(seg.read_bytes())
    data[_logical_end(data) - 1] ^= 0xFF  # flip a bit inside the last batch: CRC mismatch
    seg.write_bytes(bytes(data))
    embedded.start()
    msgs = await consume_all(bootstrap, topic, idle=1.0)
    assert [m.value for m in msgs] == [f"m{i}".encode() for i in range(4)]


async def test_clients_survive_broker_restart(embedded, topic: str) -> None:
    """A running producer and group consumer carry on across a kill -9 and restart."""
    from aiokafka import AIOKafkaConsumer

    bootstrap = embedded.bootstrap
    await create_topic(bootstrap, topic)
    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("grp"),
        auto_offset_reset="earliest",
        heartbeat_interval_ms=300,
    )
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await c.start()
    await p.start()
    got: list[bytes] = []
    try:
        for i in range(5):
            await p.send_and_wait(topic, f"before{i}".encode())
        embedded.kill()
        embedded.start()
        for i in range(5):
            await p.send_and_wait(topic, f"after{i}".encode())
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < 10 and asyncio.get_running_loop().time() < deadline:
            for msgs in (await c.getmany(timeout_ms=200)).values():
                got += [m.value for m in msgs]
    finally:
        await p.stop()
        await c.stop()
    assert sorted(set(got)) == sorted(
        [f"before{i}".encode() for i in range(5)] + [f"after{i}".encode() for i in range(5)]
    )
