"""Client helpers shared by the broker tests."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from streamflow.broker.local import recv_exact


async def create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        await admin.close()
    await wait_for_metadata(bootstrap, name, partitions)


async def wait_for_metadata(bootstrap: str, name: str, partitions: int) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            parts = await p.partitions_for(name)
            if parts and len(parts) == partitions:
                return
            await asyncio.sleep(0.1)
    finally:
        await p.stop()


async def consume_all(
    bootstrap: str,
    topic: str,
    expected: int | None = None,
    timeout: float = 10.0,
    isolation_level: str = "read_uncommitted",
    partitions: int = 1,
    idle: float = 1.5,
) -> list[Any]:
    """Read a topic from the beginning with manual assignment; returns the messages."""
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await c.start()
    try:
        c.assign([TopicPartition(topic, i) for i in range(partitions)])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        last_data = time.monotonic()
        while time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=200)
            for msgs in batch.values():
                out.extend(msgs)
                last_data = time.monotonic()
            if expected is not None and len(out) >= expected:
                break
            if expected is None and time.monotonic() - last_data > idle:
                break
        return out
    finally:
        await c.stop()


def raw_request(bootstrap: str, request: Any, response_cls: Any, version: int) -> Any:
    """Send one request over a fresh socket and decode the response."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        request.with_header(correlation_id=42, client_id="conformance")
        s.sendall(bytes(request.encode(header=True, framed=True)))
        size = int.from_bytes(recv_exact(s, 4), "big")
        return response_cls.decode(recv_exact(s, size), version=version, header=True)


def send_raw(bootstrap: str, payload: bytes, read: bool = True) -> bytes | None:
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(payload)
        if not read:
            return None
        try:
            size = int.from_bytes(recv_exact(s, 4), "big")
            return recv_exact(s, size)
        except (TimeoutError, ConnectionError):
            return None


def produce_raw(bootstrap: str, topic: str, records: bytes) -> tuple[int, int]:
    """Send ``records`` (a record batch) to partition 0 with a raw Produce v7 request.

    Returns the partition's ``(error_code, base_offset)``.
    """
    from kafka.protocol.producer import ProduceRequest, ProduceResponse

    request = ProduceRequest[7](
        transactional_id=None,
        acks=-1,
        timeout_ms=10000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=records)
                ],
            )
        ],
    )
    response = raw_request(bootstrap, request, ProduceResponse, 7)
    partition = response.responses[0].partition_responses[0]
    return partition.error_code, partition.base_offset
