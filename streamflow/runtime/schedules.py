"""Running app-level schedules (``@app.timer``, ``@app.crontab``) on a worker.

:class:`ScheduleRunner` is a service with one loop per schedule: it sleeps until the next
run, skips it when the schedule is ``on_leader`` and this worker is not the group's
leader, and runs the function with its ``topic.send`` calls going through a
:class:`SenderEmitter` (each send acknowledged before it returns). The test driver runs
the same :func:`run_schedule` when ``advance_time`` passes a run.

Example:
    >>> # runner = ScheduleRunner(app.schedules, is_leader=fapp.is_leader, bootstrap=...)
    >>> # await runner.start()
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from streamflow.dsl.schedules import Schedule
from streamflow.runtime.agents import emitting, encode_out
from streamflow.runtime.sender import BatchSender, RecordSender
from streamflow.topics import Topic

__all__ = ["ScheduleRunner", "SenderEmitter", "run_schedule"]

log = logging.getLogger(__name__)


class SenderEmitter:
    """Sends each record at once through a fresh batch of ``new_sender()`` and waits for
    its acknowledgement (what ``topic.send`` does in a schedule).

    >>> import asyncio
    >>> from streamflow.testing.topics import MemorySender, MemoryTopics
    >>> topics = MemoryTopics(1)
    >>> emitter = SenderEmitter(lambda: MemorySender(topics), clock=lambda: 2.0)
    >>> asyncio.run(emitter.send(Topic("out", value="str"), "k", "v", timestamp=None,
    ...                          headers=None, partition=None))
    >>> [(r.value, r.timestamp) for r in topics.get("out").log]
    [(b'v', 2000)]
    """

    def __init__(
        self, new_sender: Callable[[], RecordSender], clock: Callable[[], float] = time.time
    ) -> None:
        self._new_sender = new_sender
        self._clock = clock

    async def send(
        self,
        topic: Topic,
        key: Any,
        value: Any,
        *,
        timestamp: int | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None,
    ) -> None:
        stamp = int(self._clock() * 1000) if timestamp is None else int(timestamp)
        name, part, raw_key, raw_value, stamp, raw_headers = encode_out(
            topic, key, value, stamp, headers, partition
        )
        sender = self._new_sender()
        sent = await sender.send(
            name, [(raw_key, raw_value, stamp)], partition=part, headers=[raw_headers]
        )
        await sender.flush()
        await asyncio.gather(*(each.wait() for each in sent.values()))


async def run_schedule(schedule: Schedule, emitter: SenderEmitter) -> bool:
    """Run ``schedule``'s function once; ``False`` (logged) if it raised.

    >>> import asyncio
    >>> from streamflow.dsl.schedules import timer_schedule
    >>> def broken():
    ...     raise ValueError("no")
    >>> asyncio.run(run_schedule(timer_schedule(broken, 1, name="b", on_leader=False), None))
    False
    """
    with emitting(emitter):
        try:
            result = schedule.fn()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Schedule %s raised; it runs again at its next time", schedule.name)
            return False
    return True


class ScheduleRunner(Service):
    """Runs ``schedules`` on this worker, each in a loop of its own.

    ``is_leader()`` says whether this worker leads its group (for ``on_leader``).
    """

    def __init__(
        self,
        schedules: Sequence[Schedule],
        is_leader: Callable[[], bool],
        bootstrap: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.schedules = list(schedules)
        self.is_leader = is_leader
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        # Idempotent and outside transactions: a schedule's send is visible once acked.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, linger_ms=5
        )
        await self._producer.start()
        producer = self._producer
        emitter = SenderEmitter(lambda: BatchSender(producer))
        for schedule in self.schedules:
            self.add_future(self._loop_of(schedule, emitter))

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def _loop_of(self, schedule: Schedule, emitter: SenderEmitter) -> None:
        started = time.time()
        due = schedule.next_run(started, started)
        while not self.should_stop:
            await self.sleep(max(0.0, due - time.time()))
            if self.should_stop:
                break
            if not schedule.on_leader or self.is_leader():
                await run_schedule(schedule, emitter)
            # Runs missed while this one ran are skipped, not made up.
            due = schedule.next_run(max(due, time.time()), started)
