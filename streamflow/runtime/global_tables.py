"""Global tables: a topic replicated in full on every worker, for joins by any key.

A global table is read from every partition of its topic by each worker on its own (no
consumer group), under ``read_committed``: at start-up it is restored up to the end of the
topic before the worker processes anything, then kept current while the worker runs. Its
state is local to the worker and rebuilt from the topic at every start (the topic is the
changelog). Joins read it as of the moment the stream record is processed; it is not part
of the stream's transactions, as in Kafka Streams.

Example:
    >>> from streamflow.codecs import resolve_codec
    >>> state = GlobalTableState("regions", resolve_codec("str"), resolve_codec("json"), {})
    >>> state.apply(b"emea", b'{"name": "Europe"}')
    >>> state.get("emea"), state.get("apac")
    ({'name': 'Europe'}, None)
    >>> state.apply(b"emea", None)
    >>> len(state)
    0
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from streamflow.codecs import Codec

__all__ = ["GlobalTableReplica", "GlobalTableState", "rocksdb_global_store"]

log = logging.getLogger(__name__)


class GlobalTableState:
    """The decoded view of a global table held in ``store`` (raw key -> raw value bytes)."""

    def __init__(
        self, name: str, key_codec: Codec, value_codec: Codec, store: MutableMapping[bytes, bytes]
    ) -> None:
        self.name = name
        self.key_codec = key_codec
        self.value_codec = value_codec
        self.store = store

    def get(self, key: Any) -> Any:
        """The value of ``key``, or ``None``."""
        raw = self.store.get(self.key_codec.encode(key))
        return None if raw is None else self.value_codec.decode(raw)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the topic: the latest value wins, ``None`` deletes."""
        if key is None:
            return
        if value is None:
            if key in self.store:
                del self.store[key]
        else:
            self.store[key] = value

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every ``(key, value)``, decoded."""
        for key, value in self.store.items():
            yield self.key_codec.decode(key), self.value_codec.decode(value)

    def __len__(self) -> int:
        return sum(1 for _ in self.store.keys())  # noqa: SIM118 - RocksDB iterates keys only so


def rocksdb_global_store(path: Path) -> MutableMapping[bytes, bytes]:
    """A fresh RocksDB database at ``path`` (wiped: a global table is restored at start)."""
    from rocksdict import Options, Rdict

    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Rdict(str(path), options=Options(raw_mode=True))


class GlobalTableReplica(Service):
    """Keeps one :class:`GlobalTableState` in step with its topic on this worker.

    ``restored`` is set once every partition was read up to its end as of start-up.

    >>> # replica = GlobalTableReplica(state, topic="regions", bootstrap="127.0.0.1:9092")
    >>> # await replica.restored.wait()
    """

    def __init__(self, state: GlobalTableState, topic: str, bootstrap: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.table = state
        self.topic = topic
        self.bootstrap = bootstrap
        self.restored = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer._client._wait_on_metadata(self.topic)
            partitions = consumer.partitions_for_topic(self.topic) or set()
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        self._restore_ends = await consumer.end_offsets(assigned)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @Service.task
    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        pending = {tp: end for tp, end in self._restore_ends.items() if end > 0}
        if not pending:
            self._mark_restored()
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    self.table.apply(record.key, record.value)
            if pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= pending[tp]:
                        del pending[tp]
                if not pending:
                    self._mark_restored()

    def _mark_restored(self) -> None:
        log.info("Global table %s restored: %d keys", self.table.name, len(self.table))
        self.restored.set()
