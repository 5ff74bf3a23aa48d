"""Services that do one thing every so often, beside faust: write ticks, purge records.

A :class:`PeriodicService` calls :meth:`~PeriodicService.run_once` every ``interval``
seconds until it stops; a round that fails is logged and the next one tries again.

Example:
    >>> class Hello(PeriodicService):
    ...     async def run_once(self):
    ...         print("hello")
    >>> Hello(interval=5.0).interval
    5.0
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection
from typing import Any

from mode import Service

__all__ = ["PartitionsService", "PeriodicService"]

log = logging.getLogger(__name__)


class PeriodicService(Service):
    """Runs :meth:`run_once` every ``interval`` seconds; ``interval_env`` names the
    environment variable that overrides ``default_interval``."""

    default_interval = 1.0
    interval_env = ""
    #: What a round does, for the warning when one fails.
    activity = "run"

    def __init__(self, *, interval: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        configured = os.environ.get(self.interval_env) if self.interval_env else None
        self.interval = interval or float(configured or self.default_interval)

    async def run_once(self) -> Any:
        """One round of the work."""
        raise NotImplementedError

    @Service.task
    async def _every_interval(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            if self.should_stop:
                break
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning("Could not %s: %s: %s", self.activity, type(exc).__name__, exc)


class PartitionsService(PeriodicService):
    """A periodic service working on this worker's assigned partitions of ``topics``.

    ``assigned()`` lists the worker's assigned ``(topic, partition)`` pairs; ``bootstrap``
    is the broker the service's own client connects to.
    """

    def __init__(
        self,
        topics: Collection[str],
        assigned: Callable[[], list[tuple[str, int]]],
        bootstrap: str,
        *,
        interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(interval=interval, **kwargs)
        self.topics = set(topics)
        self.assigned = assigned
        self.bootstrap = bootstrap

    def mine(self) -> list[tuple[str, int]]:
        """The assigned partitions of the service's topics."""
        return [(t, p) for t, p in self.assigned() if t in self.topics]
