"""Windows for windowed aggregations: tumbling, hopping, sliding and session windows.

A windowed table holds one aggregate per key *and window*; its keys are :class:`Windowed`
``(key, start, end)`` (epoch milliseconds). Records are placed by their timestamp (the
Kafka timestamp, or what the stream's ``timestamp=`` extractor reads from the record).

* :func:`tumbling` and :func:`hopping`: fixed windows, ``end`` exclusive.
* :func:`sliding`: a window per record, of the records at most ``size`` apart (Kafka
  Streams' ``SlidingWindows``); ``end`` inclusive, ``end - start == size``.
* :func:`session`: a key's records less than ``gap`` apart form one session, which grows
  (and merges with the next session) as records bridge the gaps; ``end`` inclusive: the
  time of the session's last record.

A window *closes* once the partition's *stream time* (the highest timestamp it has seen)
passes its end plus ``grace``. A record that only falls into closed windows is *late*:
``late="drop"`` (the default) drops it and counts it in
``streamflow_late_records_total``; ``late="dead-letter"`` sends it to the dead-letter topic.
``emit="update"`` (the default) emits every change of a window; ``emit="close"`` emits
exactly one final result per window, when it closes (Kafka Streams'
``EmitStrategy.onWindowClose``). A window is kept, and answers table-view queries, until
stream time passes its start (a session: its end) plus ``retention`` (one day by default,
as in Kafka Streams); then it is deleted from the table and its changelog.

Example:
    >>> windows = hopping(60, advance=30)
    >>> windows.starts(90_000)
    [90000, 60000]
    >>> tumbling(60).starts(90_000)
    [60000]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

__all__ = [
    "DEFAULT_RETENTION_MS",
    "EMIT_STRATEGIES",
    "LATE_POLICIES",
    "JoinWindows",
    "SessionWindows",
    "SlidingWindows",
    "TimeWindows",
    "Windowed",
    "Windows",
    "hopping",
    "session",
    "sliding",
    "tumbling",
]

#: How long windows are kept when no ``retention`` is given: one day, as in Kafka Streams.
DEFAULT_RETENTION_MS = 24 * 3600 * 1000

#: ``emit=``: every change of a window, or one final result when it closes.
EMIT_STRATEGIES = ("update", "close")
#: ``late=``: what happens to a record that only falls into closed windows.
LATE_POLICIES = ("drop", "dead-letter")


class Windowed(NamedTuple):
    """A key of a windowed table: the grouping key and its window ``[start, end)`` in ms.

    >>> Windowed("user-1", 0, 60_000).end
    60000
    """

    key: Any
    start: int
    end: int


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _require_positive(seconds: float, what: str) -> None:
    if seconds <= 0:
        raise ValueError(f"{what} must be positive")


@dataclass(frozen=True, kw_only=True)
class Windows:
    """What all windows share: lateness, retention and when results are emitted.

    ``grace`` seconds: how late a record may arrive, after its window ended, and still
    count. ``retention`` seconds: how long a window is kept (default: one day, or the span
    plus grace if longer). ``emit``: ``"update"`` or ``"close"``; ``late``: ``"drop"`` or
    ``"dead-letter"`` (see the module documentation).

    >>> tumbling(60, emit="close").emits_on_close
    True
    >>> sliding(10, late="dead-letter").late
    'dead-letter'
    """

    grace: float = 0.0
    retention: float | None = None
    emit: str = "update"
    late: str = "drop"
    #: Whether a window's ``end`` is the time of a record it holds (sliding, session).
    end_inclusive: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.grace < 0:
            raise ValueError("grace cannot be negative")
        if self.emit not in EMIT_STRATEGIES:
            raise ValueError(f"emit must be 'update' or 'close', got {self.emit!r}")
        if self.late not in LATE_POLICIES:
            raise ValueError(f"late must be 'drop' or 'dead-letter', got {self.late!r}")
        if self.retention is not None and self.retention * 1000 < self.span_ms + self.grace_ms:
            raise ValueError(
                f"retention ({self.retention:g}s) must be at least the window size plus grace "
                f"({(self.span_ms + self.grace_ms) / 1000:g}s): windows would be deleted "
                "while still open"
            )

    @property
    def span_ms(self) -> int:
        """The length of time one window covers (at least), in milliseconds."""
        raise NotImplementedError

    def describe(self) -> str:
        """A one-line description (``streamflow topology``).

        >>> hopping(60, advance=30, grace=5).describe()
        'hopping windows, size 60s, advance 30s, grace 5s, emit every update'
        """
        kind, shape = self._shape()
        emit = "emit on close" if self.emits_on_close else "emit every update"
        late = ", late records dead-lettered" if self.late == "dead-letter" else ""
        return f"{kind} windows, {shape}, grace {self.grace:g}s, {emit}{late}"

    def _shape(self) -> tuple[str, str]:
        raise NotImplementedError

    @property
    def grace_ms(self) -> int:
        """Allowed lateness in milliseconds."""
        return round(self.grace * 1000)

    @property
    def retention_ms(self) -> int:
        """How long after its start (a session: its end) a window is kept, in milliseconds."""
        if self.retention is not None:
            return round(self.retention * 1000)
        return max(DEFAULT_RETENTION_MS, self.span_ms + self.grace_ms)

    @property
    def emits_on_close(self) -> bool:
        """Whether only final results are emitted (``emit="close"``)."""
        return self.emit == "close"

    def close_ms(self, window: Windowed) -> int:
        """The stream time at which ``window`` closes: its end plus grace.

        >>> tumbling(60, grace=5).close_ms(Windowed("k", 0, 60_000))
        65000
        >>> sliding(10).close_ms(Windowed("k", 0, 10_000))
        10001
        """
        return window.end + self.grace_ms + (1 if self.end_inclusive else 0)


@dataclass(frozen=True)
class TimeWindows(Windows):
    """Windows of ``size`` seconds starting every ``advance`` seconds (tumbling when equal).

    ``retention`` cannot be shorter than ``size + grace``.

    >>> TimeWindows(size=10, advance=5).starts(12_000)
    [10000, 5000]
    >>> TimeWindows(size=10, advance=10, retention=60).retention_ms
    60000
    """

    size: float
    advance: float

    def __post_init__(self) -> None:
        if self.size <= 0 or self.advance <= 0:
            raise ValueError("window size and advance must be positive")
        if self.advance > self.size:
            raise ValueError(
                "a window cannot advance by more than its size (records would fall between windows)"
            )
        super().__post_init__()

    @property
    def size_ms(self) -> int:
        """Window length in milliseconds."""
        return round(self.size * 1000)

    @property
    def span_ms(self) -> int:
        """Window length in milliseconds."""
        return self.size_ms

    @property
    def advance_ms(self) -> int:
        """Distance between window starts in milliseconds."""
        return round(self.advance * 1000)

    def _shape(self) -> tuple[str, str]:
        if self.advance == self.size:
            return "tumbling", f"size {self.size:g}s"
        return "hopping", f"size {self.size:g}s, advance {self.advance:g}s"

    def starts(self, timestamp_ms: int) -> list[int]:
        """Starts of the windows that contain ``timestamp_ms``, latest first."""
        size, advance = self.size_ms, self.advance_ms
        latest = timestamp_ms - timestamp_ms % advance
        return list(range(latest, max(timestamp_ms - size, -1), -advance))

    def window(self, key: Any, start: int) -> Windowed:
        """The windowed key of ``key`` in the window starting at ``start``."""
        return Windowed(key, start, start + self.size_ms)


@dataclass(frozen=True)
class SlidingWindows(Windows):
    """Windows of the records of a key at most ``size`` seconds apart (Kafka Streams'
    ``SlidingWindows``): each record has a window ending at it, ``[t - size, t]``, and one
    starting just after it, ``[t + 1, t + 1 + size]``, if that one holds records. Both ends
    are inclusive.

    >>> SlidingWindows(size=10).size_ms
    10000
    """

    size: float
    end_inclusive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _require_positive(self.size, "a sliding window's size")
        super().__post_init__()

    @property
    def size_ms(self) -> int:
        """The largest time difference of two records in one window, in milliseconds."""
        return _ms(self.size)

    span_ms = size_ms

    def _shape(self) -> tuple[str, str]:
        return "sliding", f"size {self.size:g}s"


@dataclass(frozen=True)
class SessionWindows(Windows):
    """Sessions: the records of a key with less than ``gap`` seconds between neighbours.

    A session is ``[first record, last record]`` (both inclusive). A record within ``gap``
    of a session joins it; one within ``gap`` of two sessions merges them.

    >>> SessionWindows(gap=30).gap_ms
    30000
    """

    gap: float
    end_inclusive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _require_positive(self.gap, "a session's inactivity gap")
        super().__post_init__()

    @property
    def gap_ms(self) -> int:
        """The inactivity gap in milliseconds (a session lasts at least that long)."""
        return _ms(self.gap)

    span_ms = gap_ms

    def _shape(self) -> tuple[str, str]:
        return "session", f"gap {self.gap:g}s"

    def close_ms(self, window: Windowed) -> int:
        """A session closes once no record on time can extend it: when stream time passes
        its end plus the gap plus grace.

        >>> session(30).close_ms(Windowed("k", 0, 10_000))
        40001
        """
        return window.end + self.gap_ms + self.grace_ms + 1


def tumbling(
    size: float,
    *,
    grace: float = 0.0,
    retention: float | None = None,
    emit: str = "update",
    late: str = "drop",
) -> TimeWindows:
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
    return TimeWindows(
        size=size, advance=size, grace=grace, retention=retention, emit=emit, late=late
    )


def hopping(
    size: float,
    *,
    advance: float,
    grace: float = 0.0,
    retention: float | None = None,
    emit: str = "update",
    late: str = "drop",
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
    return TimeWindows(
        size=size, advance=advance, grace=grace, retention=retention, emit=emit, late=late
    )


def sliding(
    size: float,
    *,
    grace: float = 0.0,
    retention: float | None = None,
    emit: str = "update",
    late: str = "drop",
) -> SlidingWindows:
    """A window for every set of a key's records at most ``size`` seconds apart.

    Each record has the window ending at it, ``[t - size, t]``, and the one starting just
    after it, ``[t + 1, t + 1 + size]``, when that one holds records (both ends inclusive):
    an aggregate over "the last ``size`` seconds" at every record, without the many empty
    or repeated windows hopping windows with a small advance make.

    >>> from streamflow import App, sliding
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> clicks = app.stream(app.topic("clicks", value="json")).group_by_key()
    >>> recent = clicks.windowed_by(sliding(10)).count(name="recent")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("clicks", [("u1", {}, 10_000), ("u1", {}, 15_000)])
    ...     for window, n in driver.table("recent").items():
    ...         print(window, n)
    Windowed(key='u1', start=0, end=10000) 1
    Windowed(key='u1', start=5000, end=15000) 2
    Windowed(key='u1', start=10001, end=20001) 1
    """
    return SlidingWindows(size=size, grace=grace, retention=retention, emit=emit, late=late)


def session(
    gap: float,
    *,
    grace: float = 0.0,
    retention: float | None = None,
    emit: str = "update",
    late: str = "drop",
) -> SessionWindows:
    """Sessions of activity: a key's records less than ``gap`` seconds apart form one.

    A record that bridges two sessions merges them (``aggregate`` then needs a
    ``merger``; ``count`` and ``reduce`` merge on their own). The table holds the merged
    session and drops the ones it replaced; with ``emit="update"`` their keys are sent on
    as deletions (value ``None``).

    >>> from streamflow import App, session
    >>> from streamflow.testing import TestDriver
    >>> app = App("demo")
    >>> views = app.stream(app.topic("views", value="json")).group_by_key()
    >>> sessions = views.windowed_by(session(30, grace=60)).count(name="sessions")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("views", [("u1", {}, 0), ("u1", {}, 50_000), ("u1", {}, 85_000)])
    ...     driver.pipe("views", "u1", {}, timestamp=25_000)  # bridges the first two
    ...     for window, n in driver.table("sessions").items():
    ...         print(window, n)
    Windowed(key='u1', start=0, end=50000) 3
    Windowed(key='u1', start=85000, end=85000) 1
    """
    return SessionWindows(gap=gap, grace=grace, retention=retention, emit=emit, late=late)


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
