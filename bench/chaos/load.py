"""The input of a chaos run: generated records written at a steady rate while faults happen.

Orders come from ``examples/generate_orders.py`` (reproducible from a seed); the app's
profile turns them into the records of its input topics
(:meth:`~bench.chaos.profiles.AppProfile.input_records`: by default each user's orders to
one partition, so each user's events have a total order the outputs can be checked
against). They are encoded with each topic's own codecs, as ``streamflow produce`` does.
The producer is idempotent and retries for minutes, so broker restarts delay the input
but neither lose nor repeat it.

Reference data (the records of tables read from topics, such as customer profiles) is
written once before the input, keyed and partitioned as streamflow partitions (murmur2 of
the key bytes, :func:`~streamflow.runtime.sender.partition_for`), so it is co-partitioned
with the repartition topics the app joins it with.

Example:
    >>> # load = SteadyLoad("127.0.0.1:9192", records, partitions=8, rate=200); load.start()
    >>> # ...; load.join(); load.delivered == len(records)
    >>> # write_records("127.0.0.1:9192", customers, [("user-001", {...})], partitions=8)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaException, Producer

from streamflow.runtime.sender import partition_for
from streamflow.topics import Topic

__all__ = ["InputRecord", "SteadyLoad", "write_records"]

# librdkafka's connection errors while the broker restarts are expected: kept out of sight.
log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
log.propagate = False

# Long enough to ride out a broker restart; the run's drain timeout comes later anyway.
DELIVERY_TIMEOUT_MS = 600_000


def _producer(bootstrap: str) -> Producer:
    """An idempotent producer that rides out broker restarts."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": DELIVERY_TIMEOUT_MS,
        },
        logger=log,
    )


def write_records(
    bootstrap: str,
    topic: Topic,
    records: Sequence[tuple[Any, Any]],
    partitions: int,
    timeout: float = 120.0,
    partition_of: Callable[[Any, Any], int | None] = lambda key, value: None,
) -> None:
    """Write ``(key, value)`` records to ``topic`` in order, partitioned by key (unless
    ``partition_of(key, value)`` names a partition); wait for all.

    Raises ``RuntimeError`` if a record is not delivered within ``timeout`` seconds.
    """
    producer = _producer(bootstrap)
    errors: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(str(KafkaException(error)))

    for key, value in records:
        encoded = topic.key_codec.encode(key)
        producer.produce(
            topic.name,
            key=encoded,
            value=None if value is None else topic.value_codec.encode(value),
            partition=_or(partition_of(key, value), partition_for(encoded, partitions)),
            on_delivery=delivered,
        )
        producer.poll(0)
    left = producer.flush(timeout)
    if errors or left:
        first = errors[0] if errors else "delivery timed out"
        raise RuntimeError(
            f"{len(errors) + left} of {len(records)} records to {topic.name} not written: {first}"
        )


#: One input record: ``(topic, key, value, partition)``; value as JSON-ish data (decimals
#: as strings), encoded with the topic's codec; partition ``None``: by key, as streamflow.
InputRecord = tuple[Topic, Any, Any, "int | None"]


class SteadyLoad(threading.Thread):
    """A thread writing ``records`` (:data:`InputRecord`) in order, ``rate`` per second."""

    def __init__(
        self,
        bootstrap: str,
        records: Sequence[InputRecord],
        partitions: int,
        rate: float,
    ) -> None:
        super().__init__(name="chaos-load", daemon=True)
        self.records = records
        self.partitions = partitions
        self.rate = rate
        self.sent = 0
        self.delivered = 0
        self.errors: list[str] = []
        self._halt = threading.Event()
        self._producer = _producer(bootstrap)

    def stop(self) -> None:
        """Stop sending (what is queued is still flushed for a moment)."""
        self._halt.set()

    def run(self) -> None:
        started = time.monotonic()
        for index, (topic, key, value, partition) in enumerate(self.records):
            if self._halt.is_set():
                break
            delay = started + index / self.rate - time.monotonic()
            if delay > 0.005:
                self._producer.poll(delay)
            encoded = topic.key_codec.encode(key)
            codec = topic.value_codec
            count = topic.partitions or self.partitions
            record = {
                "key": encoded,
                "value": codec.encode(codec.from_json(value)),
                "partition": _or(partition, partition_for(encoded, count)),
            }
            while not self._halt.is_set():
                try:
                    self._producer.produce(topic.name, on_delivery=self._delivered, **record)
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self.sent += 1
        deadline = time.monotonic() + DELIVERY_TIMEOUT_MS / 1000
        while len(self._producer) and time.monotonic() < deadline:
            self._producer.flush(1.0)
            if self._halt.is_set() and len(self._producer):
                self._producer.flush(5.0)
                break

    def _delivered(self, error: Any, message: Any) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.errors.append(str(KafkaException(error)))


def _or(partition: int | None, default: int) -> int:
    return default if partition is None else partition
