"""Time windows for windowed aggregations: tumbling and hopping, by record timestamp.

A windowed table holds one aggregate per key *and window*; its keys are :class:`Windowed`
``(key, start, end)`` (epoch milliseconds, end exclusive). Records are placed by their
Kafka timestamp. A record arriving after its window closed (window end plus ``grace``,
measured against the highest timestamp the partition has seen: its *stream time*) is
dropped as late. A window is kept, and answers table-view queries, until stream time passes
its start plus ``retention`` (one day by default, as in Kafka Streams); then it is deleted
from the table and its changelog.

Example:
    >>> windows = hopping(60, advance=30)
    >>> windows.starts(90_000)
    [90000, 60000]
    >>> tumbling(60).starts(90_000)
    [60000]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_RETENTION_MS",
    "JoinWindows",
    "TimeWindows",
    "Windowed",
    "hopping",
    "tumbling",
]

#: How long windows are kept when no ``retention`` is given: one day, as in Kafka Streams.
DEFAULT_RETENTION_MS = 24 * 3600 * 1000


class Windowed(NamedTuple):
    """A key of a windowed table: the grouping key and its window ``[start, end)`` in ms.

    >>> Windowed("user-1", 0, 60_000).end
    60000
    """

    key: Any
    start: int
    end: int


@dataclass(frozen=True)
class TimeWindows:
    """Windows of ``size`` seconds starting every ``advance`` seconds (tumbling when equal).

    ``grace`` seconds: how late a record may arrive, after its window ended, and still count.
    ``retention`` seconds: how long after its start a window is kept (default: one day, or
    ``size + grace`` if longer); it cannot be shorter than ``size + grace``.

    >>> TimeWindows(size=10, advance=5).starts(12_000)
    [10000, 5000]
    >>> TimeWindows(size=10, advance=10, retention=60).retention_ms
    60000
    """

    size: float
    advance: float
    grace: float = 0.0
    retention: float | None = None

    def __post_init__(self) -> None:
        if self.size <= 0 or self.advance <= 0:
            raise ValueError("window size and advance must be positive")
        if self.advance > self.size:
            raise ValueError(
                "a window cannot advance by more than its size (records would fall between windows)"
            )
        if self.grace < 0:
            raise ValueError("grace cannot be negative")
        if self.retention is not None and self.retention < self.size + self.grace:
            raise ValueError(
                f"retention ({self.retention:g}s) must be at least the window size plus grace "
                f"({self.size + self.grace:g}s): windows would be deleted while still open"
            )

    @property
    def size_ms(self) -> int:
        """Window length in milliseconds."""
        return round(self.size * 1000)

    @property
    def advance_ms(self) -> int:
        """Distance between window starts in milliseconds."""
        return round(self.advance * 1000)

    @property
    def grace_ms(self) -> int:
        """Allowed lateness in milliseconds."""
        return round(self.grace * 1000)

    @property
    def retention_ms(self) -> int:
        """How long after its start a window is kept, in milliseconds."""
        if self.retention is not None:
            return round(self.retention * 1000)
        return max(DEFAULT_RETENTION_MS, self.size_ms + self.grace_ms)

    def starts(self, timestamp_ms: int) -> list[int]:
        """Starts of the windows that contain ``timestamp_ms``, latest first."""
        size, advance = self.size_ms, self.advance_ms
        latest = timestamp_ms - timestamp_ms % advance
        return list(range(latest, max(timestamp_ms - size, -1), -advance))

    def window(self, key: Any, start: int) -> Windowed:
        """The windowed key of ``key`` in the window starting at ``start``."""
        return Windowed(key, start, start + self.size_ms)


def tumbling(size: float, *, grace: float = 0.0, retention: float | None = None) -> TimeWindows:
    """Back-to-back windows of ``size`` seconds: each record falls into exactly one.

    A count per minute (timestamps in milliseconds):

    >>> from streamflow import App, tumbling
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> clicks = app.stream(app.topic("clicks", value="json")).group_by_key()
    >>> per_minute = clicks.windowed_by(tumbling(60)).count(name="per-minute")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("clicks", [("u1", {}, 1_000), ("u1", {}, 59_000), ("u1", {}, 61_000)])
    ...     for window, n in driver.table("per-minute").items():
    ...         print(window, n)
    Windowed(key='u1', start=0, end=60000) 2
    Windowed(key='u1', start=60000, end=120000) 1
    """
    return TimeWindows(size=size, advance=size, grace=grace, retention=retention)


def hopping(
    size: float, *, advance: float, grace: float = 0.0, retention: float | None = None
) -> TimeWindows:
    """Windows of ``size`` seconds starting every ``advance`` seconds (they overlap).

    A record counts in every window that contains it:

    >>> from streamflow import App, hopping
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> clicks = app.stream(app.topic("clicks", value="json")).group_by_key()
    >>> counts = clicks.windowed_by(hopping(60, advance=30)).count(name="last-minute")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("clicks", [("u1", {}, 45_000), ("u1", {}, 70_000)])
    ...     for window, n in driver.table("last-minute").items():
    ...         print(window, n)
    Windowed(key='u1', start=0, end=60000) 1
    Windowed(key='u1', start=30000, end=90000) 2
    Windowed(key='u1', start=60000, end=120000) 1
    """
    return TimeWindows(size=size, advance=advance, grace=grace, retention=retention)


@dataclass(frozen=True)
class JoinWindows:
    """How far apart in time two records of a stream-stream join may be, in seconds.

    A left record at time *t* joins right records of the same key timed from
    ``t - before`` to ``t + after``. ``grace``: how late a record may arrive (behind the
    partition's stream time) and still join. Left and outer joins emit a record that found
    no match once no record that could still match it can arrive: when stream time passes
    its time plus ``before + after + grace``.

    >>> JoinWindows.of(5, grace=1)
    JoinWindows(before=5, after=5, grace=1)
    >>> JoinWindows(before=10, after=0).span_ms
    10000
    """

    before: float
    after: float
    grace: float = 0.0

    def __post_init__(self) -> None:
        if self.before < 0 or self.after < 0 or self.grace < 0:
            raise ValueError("join windows need before, after and grace >= 0")

    @classmethod
    def of(cls, difference: float, *, grace: float = 0.0) -> JoinWindows:
        """Records at most ``difference`` seconds apart, either way, join."""
        return cls(before=difference, after=difference, grace=grace)

    @property
    def before_ms(self) -> int:
        """``before`` in milliseconds."""
        return round(self.before * 1000)

    @property
    def after_ms(self) -> int:
        """``after`` in milliseconds."""
        return round(self.after * 1000)

    @property
    def grace_ms(self) -> int:
        """``grace`` in milliseconds."""
        return round(self.grace * 1000)

    @property
    def span_ms(self) -> int:
        """``before + after`` in milliseconds."""
        return self.before_ms + self.after_ms
