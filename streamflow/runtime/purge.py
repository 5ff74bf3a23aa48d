"""Purging the records of internal topics once the app's group has consumed them.

Repartition, foreign-key subscription and retry topics keep records without a time limit
(:data:`~streamflow.topics.PURGED_TOPIC_CONFIG`): their records carry event times, which
may be long past, and Kafka's time retention would delete them before they are read.
Instead, every ``STREAMFLOW_PURGE_INTERVAL`` seconds (30, as Kafka Streams' repartition
purge) each worker deletes (DeleteRecords), in the partitions of those topics assigned to
it, the records before its group's committed offset. Committed offsets only: under
exactly-once they move with the transactions, so nothing a batch may still need to read
again is deleted.

Example:
    >>> from streamflow.topics import Topic
    >>> purged_topics([Topic.internal_read_back("shop-by-user-repartition"), Topic("orders")])
    ['shop-by-user-repartition']
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from streamflow.runtime.periodic import PartitionsService
from streamflow.topics import Topic

__all__ = ["DEFAULT_PURGE_INTERVAL", "Purger", "purged_topics"]

#: Seconds between purges (``STREAMFLOW_PURGE_INTERVAL`` overrides it).
DEFAULT_PURGE_INTERVAL = 30.0


def purged_topics(topics: Iterable[Topic]) -> list[str]:
    """The names of the topics among ``topics`` that are purged once consumed."""
    return sorted({topic.name for topic in topics if topic.purged})


class Purger(PartitionsService):
    """Deletes the consumed records of the assigned partitions of ``topics``.

    ``assigned()`` lists this worker's assigned ``(topic, partition)`` pairs; ``group`` is
    the app's consumer group, whose committed offsets say what was consumed.
    """

    default_interval = DEFAULT_PURGE_INTERVAL
    interval_env = "STREAMFLOW_PURGE_INTERVAL"
    activity = "purge consumed records"

    def __init__(
        self,
        topics: Collection[str],
        assigned: Callable[[], list[tuple[str, int]]],
        group: str,
        bootstrap: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(topics, assigned, bootstrap, **kwargs)
        self.group = group
        self._admin: AIOKafkaAdminClient | None = None
        #: The offset each partition was last purged to (nothing to do until it moves).
        self.purged_to: dict[tuple[str, int], int] = {}

    async def on_start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()

    async def on_stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()

    async def run_once(self) -> dict[tuple[str, int], int]:
        """Delete what the group committed past in the assigned partitions; return the
        offsets purged to, by partition."""
        admin = self._admin
        mine = [TopicPartition(t, p) for t, p in self.mine()]
        if admin is None or not mine:
            return {}
        committed = await admin.list_consumer_group_offsets(self.group, partitions=mine)
        wanted = {
            tp: RecordsToDelete(before_offset=meta.offset)
            for tp, meta in committed.items()
            if meta is not None and meta.offset > self.purged_to.get((tp.topic, tp.partition), 0)
        }
        if not wanted:
            return {}
        await admin.delete_records(wanted)
        done = {(tp.topic, tp.partition): r.before_offset for tp, r in wanted.items()}
        self.purged_to.update(done)
        return done
