"""The commit barrier holds until every partition's transaction is over, failed or not.

The broker side of this is exercised by the chaos soak (tests/chaos); here the ordering
itself is pinned down with a producer whose first transaction is fenced and whose second
is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from streamflow import App
from streamflow.runtime.engine import Runtime
from streamflow.runtime.settings import WorkerSettings


class _Transaction:
    def __init__(self, fenced: bool) -> None:
        self.fenced = fenced
        self.committed = False

    async def send_offsets_to_transaction(self, offsets, group_id) -> None:
        if self.fenced:
            raise ProducerFenced()
        await asyncio.sleep(0.3)  # a slow round trip

    async def commit_transaction(self) -> None:
        self.committed = True

    async def begin_transaction(self) -> None:
        pass


class _Producer:
    def __init__(self) -> None:
        self._transaction_producers = {
            "app-1-0": _Transaction(fenced=True),
            "app-1-2": _Transaction(fenced=False),
        }
        self._trn_locks = defaultdict(asyncio.Lock)

    async def abort_transaction(self, transactional_id) -> None:
        pass

    async def commit_transactions(self, *args, **kwargs) -> None:
        raise NotImplementedError  # replaced by the runtime


class _Consumer:
    """faust's commit path in miniature: offsets per transaction, ProducerFenced caught."""

    def __init__(self, producer: _Producer) -> None:
        self.producer = producer

    def _new_offset(self, tp):
        return None

    def _filter_tps_with_pending_acks(self, topics=None):
        return iter(())

    async def commit(self, *args, **kwargs) -> bool:
        offsets = {
            "app-1-0": {TopicPartition("orders", 0): 10},
            "app-1-2": {TopicPartition("orders", 2): 20},
        }
        with contextlib.suppress(ProducerFenced):  # faust crashes the app and returns
            await self.producer.commit_transactions(offsets, "app", start_new_transaction=True)
        return True


async def test_a_fenced_transaction_does_not_release_the_barrier_early(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    app = App("app")
    app.stream("orders").to("out")
    runtime = Runtime(app, WorkerSettings.resolve(broker="127.0.0.1:1"))
    producer = _Producer()
    runtime._install_commit_hook(producer)
    consumer = _Consumer(producer)
    runtime._install_commit_barrier(consumer)

    commit = asyncio.create_task(consumer.commit())
    await asyncio.sleep(0.05)
    async with runtime.barrier:  # what the next batch does before it processes anything
        assert producer._transaction_producers["app-1-2"].committed
    assert await commit
