"""Free-form agents in the test driver: the agent function fed from an in-memory topic.

The driver gives each ``@app.agent`` function an :class:`AgentStream` over its topic's
decoded records and runs it on the driver's event loop, ``concurrency`` instances sharing
the stream, as a worker does. Handing a record over returns once an instance has finished
with it (it asked for the next one), so when ``pipe`` returns, every agent has seen every
record piped so far.

Example:
    >>> import asyncio
    >>> seen = []
    >>> async def audit(stream):
    ...     async for value in stream:
    ...         seen.append(value)
    >>> async def run():
    ...     runner = AgentRunner("audit", audit, concurrency=1)
    ...     await runner.hand_over("o1", {"status": "PAID"})
    ...     await runner.stop()
    >>> asyncio.run(run())
    >>> seen
    [{'status': 'PAID'}]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["AgentFailed", "AgentRunner", "AgentStream"]


class AgentFailed(RuntimeError):
    """An agent function raised (or returned) while records were still being handed to it."""


class AgentStream:
    """The stream an agent function iterates: values, or ``(key, value)`` with :meth:`items`.

    >>> # async for order in stream: ...           # values
    >>> # async for order_id, order in stream.items(): ...
    """

    def __init__(self, queue: asyncio.Queue[tuple[Any, Any]]) -> None:
        self._queue = queue

    async def _next(self) -> AsyncIterator[tuple[Any, Any]]:
        while True:
            item = await self._queue.get()
            try:
                yield item
            finally:
                # Done with it once the agent asks for the next one (or stops iterating).
                self._queue.task_done()

    async def _values(self) -> AsyncIterator[Any]:
        async for _key, value in self._next():
            yield value

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._values()

    def items(self) -> AsyncIterator[tuple[Any, Any]]:
        """Iterate ``(key, value)`` pairs."""
        return self._next()


class AgentRunner:
    """Runs ``concurrency`` instances of one agent function over one shared stream."""

    def __init__(
        self,
        name: str,
        fn: Callable[[AgentStream], Awaitable[None]],
        concurrency: int = 1,
    ) -> None:
        self.name = name
        self._fn = fn
        self._concurrency = concurrency
        self._queue: asyncio.Queue[tuple[Any, Any]] | None = None
        self._tasks: list[asyncio.Task] = []

    def _start(self) -> asyncio.Queue[tuple[Any, Any]]:
        queue: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()
        self._queue = queue
        self._tasks = [
            asyncio.create_task(self._fn(AgentStream(queue)), name=f"agent {self.name}")
            for _ in range(self._concurrency)
        ]
        return queue

    async def hand_over(self, key: Any, value: Any) -> None:
        """Give one record to the agent and wait until an instance is done with it."""
        queue = self._queue or self._start()
        queue.put_nowait((key, value))
        joined = asyncio.ensure_future(queue.join())
        done, _ = await asyncio.wait([joined, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        if joined in done:
            return
        joined.cancel()
        for task in done:
            error = task.exception()
            if error is not None:
                raise AgentFailed(
                    f"agent {self.name!r} raised {type(error).__name__}: {error}"
                ) from error
        raise AgentFailed(
            f"agent {self.name!r} returned while records were still coming: an agent "
            "iterates its stream for as long as the app runs"
        )

    async def stop(self) -> None:
        """Cancel the agent's instances and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._queue = None
