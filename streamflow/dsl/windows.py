"""Time windows for windowed aggregations: tumbling and hopping, by record timestamp.

A windowed table holds one aggregate per key *and window*; its keys are :class:`Windowed`
``(key, start, end)`` (epoch milliseconds, end exclusive). Records are placed by their
Kafka timestamp. A record arriving after its window closed (window end plus ``grace``,
measured against the highest timestamp the partition has seen) is dropped as late.

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

__all__ = ["TimeWindows", "Windowed", "hopping", "tumbling"]


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

    >>> TimeWindows(size=10, advance=5).starts(12_000)
    [10000, 5000]
    """

    size: float
    advance: float
    grace: float = 0.0

    def __post_init__(self) -> None:
        if self.size <= 0 or self.advance <= 0:
            raise ValueError("window size and advance must be positive")
        if self.advance > self.size:
            raise ValueError(
                "a window cannot advance by more than its size (records would fall between windows)"
            )
        if self.grace < 0:
            raise ValueError("grace cannot be negative")

    @property
    def size_ms(self) -> int:
        """Window length in milliseconds."""
        return int(self.size * 1000)

    @property
    def advance_ms(self) -> int:
        """Distance between window starts in milliseconds."""
        return int(self.advance * 1000)

    @property
    def grace_ms(self) -> int:
        """Allowed lateness in milliseconds."""
        return int(self.grace * 1000)

    def starts(self, timestamp_ms: int) -> list[int]:
        """Starts of the windows that contain ``timestamp_ms``, latest first."""
        size, advance = self.size_ms, self.advance_ms
        latest = timestamp_ms - timestamp_ms % advance
        return list(range(latest, max(timestamp_ms - size, -1), -advance))

    def window(self, key: Any, start: int) -> Windowed:
        """The windowed key of ``key`` in the window starting at ``start``."""
        return Windowed(key, start, start + self.size_ms)


def tumbling(size: float, *, grace: float = 0.0) -> TimeWindows:
    """Back-to-back windows of ``size`` seconds: each record falls into exactly one.

    >>> tumbling(60, grace=5)
    TimeWindows(size=60, advance=60, grace=5)
    """
    return TimeWindows(size=size, advance=size, grace=grace)


def hopping(size: float, *, advance: float, grace: float = 0.0) -> TimeWindows:
    """Windows of ``size`` seconds starting every ``advance`` seconds (they overlap).

    >>> len(hopping(60, advance=15).starts(1_000_000))
    4
    """
    return TimeWindows(size=size, advance=advance, grace=grace)
