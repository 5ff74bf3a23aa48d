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
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

__all__ = ["BatchSender", "RecordSender", "Sent", "partition_for"]

Headers = Sequence[tuple[str, bytes]]
OutRecord = tuple[bytes | None, bytes | None, int]

_round_robin = itertools.count()
_NO_HEADERS: list = []  # shared, never changed: aiokafka wants a list per record


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


class RecordSender:
    """Collects records per topic partition until :meth:`flush` delivers them.

    ``send`` only collects records; ``flush`` hands each topic partition's records to the
    delivery of the subclass, all partitions at once. Records of a topic partition keep
    their order. :class:`BatchSender` delivers to a Kafka producer; the test driver has an
    in-memory one.
    """

    def __init__(self, on_send: Callable[[str, int], None] | None = None) -> None:
        self.on_send = on_send  # told (topic, record count) of every send
        # (topic, partition) -> its Sent, records and their headers, until the next flush
        self._collected: dict[tuple[str, int], tuple[Sent, list[OutRecord], list[Headers]]] = {}

    async def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic``."""
        raise NotImplementedError

    async def send(
        self,
        topic: str,
        records: Iterable[OutRecord],
        *,
        partition: int | None = None,
        headers: Sequence[Headers] | None = None,
    ) -> dict[int, Sent]:
        """Collect ``(key, value, timestamp_ms)`` records; keys pick partitions unless given.

        ``headers``, when given, has one header list per record. Returns the
        :class:`Sent` of each partition written to: it is acknowledged after ``flush``.
        """
        records = list(records)
        if not records:
            return {}
        if self.on_send is not None:
            self.on_send(topic, len(records))
        count = None if partition is not None else await self.partitions(topic)
        sent: dict[int, Sent] = {}
        collected = self._collected
        for index, record in enumerate(records):
            part = partition if count is None else partition_for(record[0], count)
            entry = collected.get((topic, part))
            if entry is None:
                entry = collected[(topic, part)] = (Sent(), [], [])
            entry[1].append(record)
            entry[2].append(headers[index] if headers is not None else _NO_HEADERS)
            sent[part] = entry[0]
        return sent

    async def flush(self) -> None:
        """Deliver every collected record (all topic partitions at once)."""
        collected, self._collected = self._collected, {}
        await asyncio.gather(
            *(
                self._deliver(topic, partition, *entry)
                for (topic, partition), entry in collected.items()
            )
        )

    async def _deliver(
        self,
        topic: str,
        partition: int,
        sent: Sent,
        records: list[OutRecord],
        headers: list[Headers],
    ) -> None:
        raise NotImplementedError


class BatchSender(RecordSender):
    """Writes records to topics through one aiokafka producer, a record batch per partition.

    aiokafka queues one batch per partition and waits for the previous one to be sent
    before it takes the next, so batches handed over one at a time wait on each other's
    round trips; collected until :meth:`flush`, a processing step waits for one round trip
    at most.

    >>> # sender = BatchSender(producer)
    >>> # sent = await sender.send("out", records)   # collected
    >>> # await sender.flush()                        # handed to the producer
    >>> # await asyncio.gather(*(s.wait() for s in sent.values()))  # acknowledged
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        on_send: Callable[[str, int], None] | None = None,
    ) -> None:
        super().__init__(on_send)
        self.producer = producer

    async def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic`` (waits for metadata)."""
        partitions = self.producer.client.cluster.partitions_for_topic(topic)
        if not partitions:
            await self.producer.client._wait_on_metadata(topic)
            partitions = self.producer.client.cluster.partitions_for_topic(topic)
        return len(partitions)

    async def _deliver(
        self,
        topic: str,
        partition: int,
        sent: Sent,
        records: list[OutRecord],
        headers: list[Headers],
    ) -> None:
        producer = self.producer
        batch = producer.create_batch()
        count = 0
        for (key, value, timestamp), record_headers in zip(records, headers, strict=True):
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
