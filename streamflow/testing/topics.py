"""Topics in memory for the test driver: partitioned logs, and a sender that appends to them.

Records are partitioned exactly as the worker partitions them (murmur2 of the key bytes,
see :func:`streamflow.runtime.sender.partition_for`), so table partitions, stream time per
partition and the order of records within a partition are those a broker would give.
Every record also gets a sequence number across all topics: the driver processes records
in the order they were written.

Example:
    >>> topics = MemoryTopics(default_partitions=4)
    >>> stored = topics.append("words", 0, b"k", b"v", timestamp=1)
    >>> stored.offset, stored.sequence, topics.get("words").partitions
    (0, 0, 4)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamflow.runtime.sender import Headers, OutRecord, RecordSender, Sent

__all__ = ["MemorySender", "MemoryTopic", "MemoryTopics", "StoredRecord"]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record in an in-memory topic partition, as bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes], ...]
    #: Position in the order of all writes to all topics.
    sequence: int


class MemoryTopic:
    """One topic: a list of records per partition, plus every record in write order.

    >>> topic = MemoryTopic("t", partitions=2)
    >>> topic.partitions, topic.log
    (2, [])
    """

    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = partitions
        self.by_partition: list[list[StoredRecord]] = [[] for _ in range(partitions)]
        self.log: list[StoredRecord] = []


class MemoryTopics:
    """Every topic the driver has seen, created on first use.

    ``partitions_of(name)`` tells how many partitions a topic gets when first written
    (the app's declaration), else ``default_partitions``.

    >>> topics = MemoryTopics(default_partitions=8, partitions_of={"few": 2}.get)
    >>> topics.get("few").partitions, topics.get("many").partitions
    (2, 8)
    """

    def __init__(
        self,
        default_partitions: int,
        partitions_of: Callable[[str], int | None] = lambda name: None,
    ) -> None:
        self.default_partitions = default_partitions
        self._partitions_of = partitions_of
        self._topics: dict[str, MemoryTopic] = {}
        self._sequence = itertools.count()

    def get(self, name: str) -> MemoryTopic:
        """The topic ``name``, created empty if it does not exist yet."""
        topic = self._topics.get(name)
        if topic is None:
            partitions = self._partitions_of(name) or self.default_partitions
            topic = self._topics[name] = MemoryTopic(name, partitions)
        return topic

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def append(
        self,
        name: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> StoredRecord:
        """Append one record to ``name[partition]`` and return it with its offset."""
        topic = self.get(name)
        if not 0 <= partition < topic.partitions:
            raise ValueError(f"topic {name!r} has no partition {partition}")
        records = topic.by_partition[partition]
        stored = StoredRecord(
            name,
            partition,
            len(records),
            key,
            value,
            timestamp,
            tuple(headers),
            next(self._sequence),
        )
        records.append(stored)
        topic.log.append(stored)
        return stored


class MemorySender(RecordSender):
    """A :class:`~streamflow.runtime.sender.RecordSender` that appends to :class:`MemoryTopics`.

    What a batch sends is written when the batch is flushed, as a producer would; nothing
    is left to acknowledge afterwards.

    >>> import asyncio
    >>> topics = MemoryTopics(default_partitions=1)
    >>> sender = MemorySender(topics)
    >>> async def send():
    ...     await sender.send("out", [(b"k", b"v", 0)])
    ...     await sender.flush()
    >>> asyncio.run(send())
    >>> [r.value for r in topics.get("out").log]
    [b'v']
    """

    def __init__(self, topics: MemoryTopics) -> None:
        super().__init__()
        self.topics = topics

    async def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic`` (created if new)."""
        return self.topics.get(topic).partitions

    async def flush(self) -> None:
        """Append every collected record, topic partition after topic partition."""
        collected, self._collected = self._collected, {}
        for (topic, partition), entry in collected.items():
            await self._deliver(topic, partition, *entry)

    async def _deliver(
        self,
        topic: str,
        partition: int,
        sent: Sent,
        records: list[OutRecord],
        headers: list[Headers],
    ) -> None:
        for (key, value, timestamp), record_headers in zip(records, headers, strict=True):
            self.topics.append(topic, partition, key, value, timestamp, record_headers)
