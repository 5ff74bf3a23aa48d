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

import asyncio
import logging
import os
from collections.abc import Callable, Collection, Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from mode import Service

from streamflow.topics import Topic

__all__ = ["DEFAULT_PURGE_INTERVAL", "Purger", "purged_topics"]

log = logging.getLogger(__name__)

#: Seconds between purges (``STREAMFLOW_PURGE_INTERVAL`` overrides it).
DEFAULT_PURGE_INTERVAL = 30.0


def purged_topics(topics: Iterable[Topic]) -> list[str]:
    """The names of the topics among ``topics`` that are purged once consumed."""
    return sorted({topic.name for topic in topics if topic.purged})


class Purger(Service):
    """Deletes the consumed records of the assigned partitions of ``topics``.

    ``assigned()`` lists this worker's assigned ``(topic, partition)`` pairs; ``group`` is
    the app's consumer group, whose committed offsets say what was consumed.
    """

    def __init__(
        self,
        topics: Collection[str],
        assigned: Callable[[], list[tuple[str, int]]],
        group: str,
        bootstrap: str,
        interval: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.topics = set(topics)
        self.assigned = assigned
        self.group = group
        self.bootstrap = bootstrap
        self.interval = interval or float(
            os.environ.get("STREAMFLOW_PURGE_INTERVAL") or DEFAULT_PURGE_INTERVAL
        )
        self._admin: AIOKafkaAdminClient | None = None
        #: The offset each partition was last purged to (nothing to do until it moves).
        self.purged_to: dict[tuple[str, int], int] = {}

    async def on_start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()

    async def on_stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()

    @Service.task
    async def _purge(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            if self.should_stop:
                break
            try:
                await self.purge_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again; records only wait longer
                log.warning("Could not purge consumed records: %s: %s", type(exc).__name__, exc)

    async def purge_once(self) -> dict[tuple[str, int], int]:
        """Delete what the group committed past in the assigned partitions; return the
        offsets purged to, by partition."""
        admin = self._admin
        mine = [TopicPartition(t, p) for t, p in self.assigned() if t in self.topics]
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
