"""Batched record sending on an aiokafka producer.

Records are partitioned like Kafka's default partitioner (murmur2 of the key bytes), so that
repartition topics, changelogs and HTTP table routing agree on where a key lives. They are
appended to record batches and handed to the producer one batch at a time, which avoids a
future per record.

Example:
    >>> from streamflow.runtime.sender import partition_for
    >>> partition_for(b"alice", 8) == partition_for(b"alice", 8)
    True
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

__all__ = ["BatchSender", "Sent", "partition_for"]

Headers = Sequence[tuple[str, bytes]]
OutRecord = tuple[bytes | None, bytes | None, int]

_round_robin = itertools.count()


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (round robin for None).

    >>> partition_for(b"user-1", 1)
    0
    """
    if key is None:
        return next(_round_robin) % partitions
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Sent:
    """Futures of sent batches for one topic partition, with their record counts."""

    __slots__ = ("batches",)

    def __init__(self) -> None:
        self.batches: list[tuple[asyncio.Future, int]] = []

    async def wait(self) -> None:
        """Wait until every batch is acknowledged by the broker."""
        if self.batches:
            await asyncio.gather(*(future for future, _ in self.batches))


class BatchSender:
    """Writes records to topics through one producer, a record batch at a time.

    >>> # sender = BatchSender(producer)
    >>> # sent = await sender.send("out", records, partition=None)
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        on_send: Callable[[str, int], None] | None = None,
    ) -> None:
        self.producer = producer
        self.on_send = on_send  # told (topic, record count) of every send

    async def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic`` (waits for metadata)."""
        partitions = self.producer.client.cluster.partitions_for_topic(topic)
        if not partitions:
            await self.producer.client._wait_on_metadata(topic)
            partitions = self.producer.client.cluster.partitions_for_topic(topic)
        return len(partitions)

    async def send(
        self,
        topic: str,
        records: Iterable[OutRecord],
        *,
        partition: int | None = None,
        headers: Sequence[Headers] | None = None,
    ) -> dict[int, Sent]:
        """Send ``(key, value, timestamp_ms)`` records; keys pick partitions unless given.

        ``headers``, when given, has one header list per record.
        """
        by_partition: dict[int, list[int]] = defaultdict(list)
        records = list(records)
        if partition is None:
            count = await self.partitions(topic)
            for index, record in enumerate(records):
                by_partition[partition_for(record[0], count)].append(index)
        else:
            by_partition[partition] = list(range(len(records)))
        if self.on_send is not None and records:
            self.on_send(topic, len(records))
        sent: dict[int, Sent] = {}
        for part, indexes in by_partition.items():
            sent[part] = await self._send_partition(topic, part, records, indexes, headers)
        return sent

    async def _send_partition(
        self,
        topic: str,
        partition: int,
        records: list[OutRecord],
        indexes: list[int],
        headers: Sequence[Headers] | None,
    ) -> Sent:
        sent = Sent()
        producer = self.producer
        batch = producer.create_batch()
        count = 0
        for index in indexes:
            key, value, timestamp = records[index]
            record_headers = headers[index] if headers is not None else []
            if batch.append(key=key, value=value, timestamp=timestamp, headers=record_headers):
                count += 1
                continue
            if count == 0:
                raise ValueError(
                    f"a record for {topic} is larger than the producer's max batch size"
                )
            sent.batches.append(
                (await producer.send_batch(batch, topic, partition=partition), count)
            )
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=timestamp, headers=record_headers)
            count = 1
        if count:
            sent.batches.append(
                (await producer.send_batch(batch, topic, partition=partition), count)
            )
        return sent
