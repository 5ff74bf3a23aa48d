"""Topic administration with aiokafka's admin client.

Example:
    >>> # await ensure_topics("127.0.0.1:9092", [("order_events", 8, {})])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

__all__ = ["ensure_topics"]


async def ensure_topics(
    bootstrap: str, topics: Iterable[tuple[str, int, dict[str, str]]]
) -> list[str]:
    """Create the ``(name, partitions, config)`` topics that do not exist yet.

    Returns the names it created. Existing topics are left as they are.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, partitions, 1, topic_configs=config or {})
            for name, partitions, config in topics
            if name not in existing
        ]
        if not wanted:
            return []
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another worker
            await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()
