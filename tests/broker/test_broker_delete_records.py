"""DeleteRecords (how workers purge consumed repartition records), on both brokers."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import OffsetOutOfRangeError
from broker_helpers import consume_all, create_topic


async def test_deleted_records_are_gone_and_the_rest_stays(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic, configs={"segment.bytes": "4096"})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(400):  # a batch each: many small segments
            await producer.send_and_wait(topic, f"value-{i:04d}".encode() * 4, partition=0)
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topic, 0)
        lows = await admin.delete_records({tp: RecordsToDelete(before_offset=300)})
        # Kafka deletes up to the offset exactly; the embedded broker whole segments below it.
        assert 0 < lows[tp] <= 300
        try:
            await admin.delete_records({tp: RecordsToDelete(before_offset=10_000)})
            raise AssertionError("deleting beyond the high watermark must fail")
        except OffsetOutOfRangeError:
            pass
    finally:
        await admin.close()
    left = [m.offset for m in await consume_all(bootstrap, topic, idle=1.0)]
    assert left[0] == lows[tp] and left[-1] == 399 and left == list(range(lows[tp], 400))
