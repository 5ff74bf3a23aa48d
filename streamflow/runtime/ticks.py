"""Ticks: what makes wall-clock timers fire when no record comes.

Each processor with timers reads a tick topic of its own, ``<app>-<step>-ticks``, with the
partitions of its input. A worker writes one tick, about every ``interval`` seconds, to each
partition of those topics it is assigned; processing a tick, in the partition's task and
transaction like any record, fires the partition's wall-clock timers that are due. A tick
carries nothing but the time it was written: it is a trigger, so a lost or doubled tick
changes nothing (the next one fires what is due).

Example:
    >>> # ticker = Ticker({"shop-payment-ticks"}, runtime._assigned, "127.0.0.1:9092")
    >>> # await ticker.start()
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from streamflow.codecs import IntCodec
from streamflow.runtime.periodic import PartitionsService

__all__ = ["DEFAULT_TICK_INTERVAL", "Ticker"]

#: Seconds between the ticks of a partition (``STREAMFLOW_TICK_INTERVAL`` overrides).
DEFAULT_TICK_INTERVAL = 1.0


class Ticker(PartitionsService):
    """Writes a tick to every assigned partition of ``topics`` every ``interval`` seconds.

    ``assigned()`` lists this worker's assigned ``(topic, partition)`` pairs.
    """

    default_interval = DEFAULT_TICK_INTERVAL
    interval_env = "STREAMFLOW_TICK_INTERVAL"
    activity = "write ticks"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._producer: AIOKafkaProducer | None = None
        self._encode = IntCodec().encode

    async def on_start(self) -> None:
        # A plain producer: a tick must be visible at once, not wait for a transaction.
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await self._producer.start()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def run_once(self) -> int:
        """Write one tick to each assigned tick partition; how many were written."""
        producer = self._producer
        if producer is None:
            return 0
        now = self._encode(int(time.time() * 1000))
        partitions = self.mine()
        sent = [await producer.send(t, now, partition=p) for t, p in partitions]
        if sent:
            await asyncio.gather(*sent)
        return len(sent)
