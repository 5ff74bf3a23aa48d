"""Fetch long polling: max_wait / min_bytes, counting only returnable (committed) data."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from broker_helpers import create_topic, raw_request
from conftest import unique
from kafka.protocol.consumer import FetchRequest, FetchResponse


def _fetch(
    bootstrap: str, topic: str, offset: int, min_bytes: int, max_wait_ms: int, isolation: int = 0
) -> tuple[float, object]:
    F = FetchRequest
    req = F[11](
        replica_id=-1,
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=1 << 20,
        isolation_level=isolation,
        session_id=0,
        session_epoch=-1,
        topics=[
            F.FetchTopic(
                topic=topic,
                partitions=[
                    F.FetchTopic.FetchPartition(
                        partition=0,
                        current_leader_epoch=-1,
                        fetch_offset=offset,
                        log_start_offset=-1,
                        partition_max_bytes=1 << 20,
                    )
                ],
            )
        ],
        forgotten_topics_data=[],
        rack_id="",
    )
    start = time.monotonic()
    resp = raw_request(bootstrap, req, FetchResponse, 11)
    return time.monotonic() - start, resp.responses[0].partitions[0]


async def test_min_bytes_waits_for_enough_data(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    await p.send_and_wait(topic, b"x")
    await p.stop()
    # enough data: immediate
    took, part = await asyncio.to_thread(_fetch, bootstrap, topic, 0, 1, 5000)
    assert took < 1.5 and part.records and part.high_watermark == 1
    # not enough data: waits max_wait and returns what there is
    took, part = await asyncio.to_thread(_fetch, bootstrap, topic, 0, 100_000, 800)
    assert 0.6 < took < 4 and part.records
    # at the end of the log: waits, then wakes early when data arrives
    fut = asyncio.ensure_future(asyncio.to_thread(_fetch, bootstrap, topic, 1, 1, 8000))
    await asyncio.sleep(0.5)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    await p.send_and_wait(topic, b"y")
    await p.stop()
    took, part = await fut
    assert took < 6 and part.records


async def test_open_transaction_does_not_wake_read_committed(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("tx"))
    await p.start()
    try:
        await p.begin_transaction()
        await (await p.send(topic, b"pending"))
        took, part = await asyncio.to_thread(_fetch, bootstrap, topic, 0, 1, 1000, 1)
        assert took >= 0.8, "read_committed fetch returned early on undecided data"
        assert not part.records and part.last_stable_offset == 0
        took, part = await asyncio.to_thread(_fetch, bootstrap, topic, 0, 1, 1000, 0)
        assert took < 0.8 and part.records
        await p.commit_transaction()
        took, part = await asyncio.to_thread(_fetch, bootstrap, topic, 0, 1, 5000, 1)
        assert took < 2 and part.records and part.last_stable_offset == 2
    finally:
        await p.stop()
