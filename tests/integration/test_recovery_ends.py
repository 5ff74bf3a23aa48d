"""Recovery ends at the last committed record of a changelog, not at its last stable offset."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streamflow.runtime.admin import ensure_topics
from streamflow.runtime.recovery_ends import FIRST_WINDOW, last_committed_ends

pytestmark = pytest.mark.kafka


async def _transaction(broker: str, topic: str, partition: int, count: int, *, commit: bool):
    producer = AIOKafkaProducer(
        bootstrap_servers=broker, transactional_id=f"ends-{uuid.uuid4().hex[:8]}"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        for n in range(count):
            await producer.send_and_wait(topic, b"v%d" % n, key=b"k%d" % n, partition=partition)
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
    finally:
        await producer.stop()


def test_ends_are_one_past_the_last_committed_record(broker):
    topic = f"ends-{uuid.uuid4().hex[:8]}-changelog"
    asyncio.run(ensure_topics(broker, [(topic, 4, {"cleanup.policy": "compact"})]))

    async def scenario() -> dict[TopicPartition, int]:
        # 0: committed records, then an aborted transaction longer than the first window.
        await _transaction(broker, topic, 0, 5, commit=True)  # offsets 0-4, marker 5
        await _transaction(broker, topic, 0, FIRST_WINDOW + 4, commit=False)
        # 1: committed records only.  2: nothing.  3: only an aborted transaction.
        await _transaction(broker, topic, 1, 3, commit=True)  # offsets 0-2, marker 3
        await _transaction(broker, topic, 3, 2, commit=False)
        return await last_committed_ends(broker, [TopicPartition(topic, p) for p in range(4)])

    ends = asyncio.run(scenario())
    assert ends == {
        TopicPartition(topic, 0): 5,
        TopicPartition(topic, 1): 3,
        TopicPartition(topic, 2): 0,
        TopicPartition(topic, 3): 0,
    }
