"""App-level schedules: ``@app.timer(interval)`` and ``@app.crontab("*/5 * * * *")``.

A schedule is an async function of no arguments run on the wall clock, on every worker or
(``on_leader=True``) on one worker of the group, for work no record triggers: periodic
reports, housekeeping, polling a service. It can send records (``await topic.send(...)``);
each send is acknowledged before ``send`` returns (at least once: a schedule has no
consumed offsets to commit its sends with).

Intervals run every ``interval`` seconds, the first one ``interval`` after the worker
starts; a run that takes longer than the interval skips the runs it overlapped. Cron
schedules follow a cron expression (parsed by ``croniter``) in ``timezone`` (UTC by
default). A run that raises is logged; the next one runs at its time.

Example:
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("reports")
    >>> heartbeats = app.topic("heartbeats", value="json")
    >>> @app.timer(60.0)
    ... async def heartbeat():
    ...     await heartbeats.send("reports", {"alive": True})
    >>> with TestDriver(app, start_time=0) as driver:
    ...     driver.advance_time(150)
    ...     [r.timestamp for r in driver.read_records(heartbeats)]
    [60000, 120000]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from datetime import timezone as dt_timezone
from typing import Any

from croniter import croniter

__all__ = ["Schedule", "crontab_schedule", "timer_schedule"]

#: A schedule's function: ``async def fn()`` (a plain function works too).
ScheduleFunction = Callable[[], Any]


@dataclass(frozen=True)
class Schedule:
    """When to run ``fn``: every ``interval`` seconds, or at the times ``cron`` says.

    >>> every_minute = timer_schedule(lambda: None, 60, name="tick", on_leader=False)
    >>> every_minute.next_run(after=30.0, started=0.0)
    60.0
    >>> crontab_schedule(lambda: None, "*/5 * * * *", name="c", on_leader=True,
    ...                  timezone=None).next_run(after=61.0, started=0.0)
    300.0
    """

    name: str
    fn: ScheduleFunction
    on_leader: bool
    interval: float | None = None
    cron: str | None = None
    timezone: tzinfo = dt_timezone.utc

    def next_run(self, after: float, started: float) -> float:
        """The first run strictly after ``after`` (epoch seconds), for a worker started
        at ``started``."""
        if self.interval is not None:
            runs = int((after - started) // self.interval) + 1
            return started + max(runs, 1) * self.interval
        assert self.cron is not None
        base = datetime.fromtimestamp(after, self.timezone)
        return float(croniter(self.cron, base).get_next(float))

    def describe(self) -> str:
        """``every 60s`` or ``cron */5 * * * *``, plus where it runs.

        >>> timer_schedule(lambda: None, 60, name="t", on_leader=True).describe()
        'every 60s, on the leader'
        """
        when = f"every {self.interval:g}s" if self.interval is not None else f"cron {self.cron}"
        return f"{when}, {'on the leader' if self.on_leader else 'on every worker'}"


def _check_function(fn: ScheduleFunction, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"schedule {name!r} needs a function, got {fn!r}")
    required = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        raise TypeError(
            f"schedule {name!r} is called with no arguments, but takes "
            f"{', '.join(p.name for p in required)}"
        )


def timer_schedule(
    fn: ScheduleFunction, interval: float, *, name: str, on_leader: bool
) -> Schedule:
    """A :class:`Schedule` every ``interval`` seconds (checked).

    >>> timer_schedule(lambda: None, 0, name="t", on_leader=False)
    Traceback (most recent call last):
    ...
    ValueError: timer 't': interval must be a positive number of seconds, got 0
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ValueError(
            f"timer {name!r}: interval must be a positive number of seconds, got {interval!r}"
        )
    _check_function(fn, name)
    return Schedule(name, fn, on_leader, interval=float(interval))


def crontab_schedule(
    fn: ScheduleFunction,
    cron: str,
    *,
    name: str,
    on_leader: bool,
    timezone: tzinfo | None,
) -> Schedule:
    """A :class:`Schedule` following the cron expression ``cron`` (checked).

    >>> try:
    ...     crontab_schedule(lambda: None, "every tuesday", name="c", on_leader=False,
    ...                      timezone=None)
    ... except ValueError as error:
    ...     print(str(error)[:50])
    crontab 'c': 'every tuesday' is not a cron express
    """
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ValueError(
            f"crontab {name!r}: {cron!r} is not a cron expression (five fields: minute hour "
            "day-of-month month day-of-week, e.g. '*/5 * * * *')"
        )
    _check_function(fn, name)
    return Schedule(name, fn, on_leader, cron=cron, timezone=timezone or dt_timezone.utc)
