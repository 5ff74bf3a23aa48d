"""Looking at a run from the outside: committed records, end offsets, a group's offsets.

Everything here is what any Kafka client sees; nothing asks the workers. Records are read
``read_committed`` up to each partition's last stable offset (LSO), so a read is complete by
construction rather than by waiting for silence. Comparing a partition's LSO with its high
watermark (HW) tells whether a transaction is still open on it.

Example:
    >>> # cluster = Cluster("127.0.0.1:9192")
    >>> # records = cluster.read(Topic("summary-x", key="str", value="str"))
    >>> # {tp: (lso, hw)} = cluster.end_offsets(["summary-x"])
    >>> Record(0, 5, "user-1", "12.50").offset
    5
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamflow.topics import Topic

__all__ = ["Cluster", "Record", "Undecodable"]

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Record:
    """A record as read back: where it is, its decoded key and value, and its timestamp.

    The timestamp (ms) is the one the record was written with; streamflow's operators pass
    an input record's timestamp on to what they write for it, so it can identify outputs
    whose value does not say which input they came from.
    """

    partition: int
    offset: int
    key: Any
    value: Any
    timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record whose key or value the topic's codecs could not decode."""

    topic: str
    partition: int
    offset: int
    error: str


class Cluster:
    """Synchronous reads of a broker's topics and groups (each call opens its own client).

    >>> Cluster("127.0.0.1:9192").bootstrap
    '127.0.0.1:9192'
    """

    def __init__(self, bootstrap: str, timeout: float = 120.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout

    # --- topics ------------------------------------------------------------------------

    def topics(self, containing: str = "") -> list[str]:
        """Names of the topics whose name contains ``containing``, sorted."""
        return asyncio.run(self._admin(lambda admin: admin.list_topics(), containing))

    def delete_topics(self, names: Iterable[str]) -> None:
        """Delete the topics ``names`` (errors are ignored: cleanup is best effort)."""
        names = list(names)
        if names:
            asyncio.run(self._admin(lambda admin: admin.delete_topics(names)))

    def committed(self, group: str) -> dict[TP, int]:
        """The offsets ``group`` committed, by ``(topic, partition)``."""
        offsets = asyncio.run(self._admin(lambda admin: admin.list_consumer_group_offsets(group)))
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}

    def group_members(self, group: str) -> int:
        """How many members ``group`` has right now (0 for an empty or unknown group)."""
        described = asyncio.run(self._admin(lambda admin: admin.describe_consumer_groups([group])))
        members = 0
        for response in described:
            for entry in response.groups:
                members += len(entry[5])  # (error, group, state, protocol type, protocol, members…)
        return members

    async def _admin(self, call, containing: str | None = None) -> Any:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout * 1000)
        )
        await admin.start()
        try:
            result = await call(admin)
        finally:
            await admin.close()
        if containing is not None:
            return sorted(name for name in result if containing in name)
        return result

    # --- offsets -----------------------------------------------------------------------

    def end_offsets(self, topics: Iterable[str]) -> dict[TP, tuple[int, int]]:
        """``{(topic, partition): (last stable offset, high watermark)}`` of ``topics``."""
        return asyncio.run(self._end_offsets(list(topics)))

    async def _end_offsets(self, topics: list[str]) -> dict[TP, tuple[int, int]]:
        stable = await self._list_end(topics, "read_committed")
        high = await self._list_end(topics, "read_uncommitted")
        return {tp: (stable[tp], high[tp]) for tp in high}

    async def _list_end(self, topics: list[str], isolation: str) -> dict[TP, int]:
        consumer = self._consumer(isolation)
        await consumer.start()
        try:
            tps = await self._partitions(consumer, topics)
            ends = await consumer.end_offsets(tps) if tps else {}
        finally:
            await consumer.stop()
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    # --- records -----------------------------------------------------------------------

    def read(self, topic: Topic) -> tuple[list[Record], list[Undecodable]]:
        """Every committed record of ``topic`` up to its LSO, decoded, in partition order."""
        return asyncio.run(self._read(topic))

    async def _read(self, topic: Topic) -> tuple[list[Record], list[Undecodable]]:
        consumer = self._consumer("read_committed", max_partition_fetch_bytes=4 * 1024 * 1024)
        await consumer.start()
        records: list[Record] = []
        undecodable: list[Undecodable] = []
        try:
            tps = await self._partitions(consumer, [topic.name])
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + self.timeout
            while not await self._reached(consumer, ends):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic.name} did not reach its end offsets")
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batches.items():
                    for m in messages:
                        if m.offset >= ends[tp]:
                            continue
                        try:
                            key, value = topic.decode_key(m.key), topic.decode_value(m.value)
                        except Exception as exc:
                            undecodable.append(
                                Undecodable(tp.topic, tp.partition, m.offset, repr(exc))
                            )
                            continue
                        records.append(Record(tp.partition, m.offset, key, value, m.timestamp))
        finally:
            await consumer.stop()
        records.sort(key=lambda r: (r.partition, r.offset))
        return records, undecodable

    def unread(self, positions: dict[TP, int]) -> set[TP]:
        """The partitions with a committed record at or after their given offset (and
        before their LSO): records a group committed at ``positions`` has still to process.

        Aborted records and transaction markers are not records: a group cannot commit
        past them until a later record comes, so offsets alone overstate what waits.
        """
        return asyncio.run(self._unread(positions)) if positions else set()

    async def _unread(self, positions: dict[TP, int]) -> set[TP]:
        consumer = self._consumer("read_committed")
        await consumer.start()
        found: set[TP] = set()
        try:
            tps = [TopicPartition(topic, p) for topic, p in positions]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, positions[(tp.topic, tp.partition)])
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + self.timeout
            while not await self._reached(consumer, ends) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batches.items():
                    if any(m.offset < ends[tp] for m in messages):
                        found.add((tp.topic, tp.partition))
                        consumer.pause(tp)
                        ends[tp] = -1  # done with it
        finally:
            await consumer.stop()
        return found

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if end >= 0 and await consumer.position(tp) < end:
                return False
        return True

    def _consumer(self, isolation: str, **options: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level=isolation,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=int(self.timeout * 1000),
            **options,
        )

    async def _partitions(
        self, consumer: AIOKafkaConsumer, topics: list[str]
    ) -> list[TopicPartition]:
        tps = []
        for name in topics:
            partitions = consumer.partitions_for_topic(name)
            if not partitions:
                await consumer._client._wait_on_metadata(name)
                partitions = consumer.partitions_for_topic(name) or set()
            tps.extend(TopicPartition(name, p) for p in sorted(partitions))
        return tps
