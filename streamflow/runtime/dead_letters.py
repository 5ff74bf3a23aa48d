"""Dead letters: records that could not be processed, kept with their original bytes.

A dead letter is the consumed record's key and value, byte for byte, plus headers that say
what went wrong and where the record came from:

=============================  ==========================================================
``streamflow.error``           the error message
``streamflow.exception``       the exception type (``module.Class``)
``streamflow.step``            the step that failed (``decode``, ``filter-2``, …)
``streamflow.source.topic``    topic the record was consumed from
``streamflow.source.partition``  its partition
``streamflow.source.offset``   its offset
``streamflow.app``             the app id
=============================  ==========================================================

A dead letter replayed into a topic (``streamflow dlq replay``) loses these headers and
gains ``streamflow.replayed-from`` = ``<dead-letter topic>:<partition>:<offset>``.

Dead letters are sent (by :mod:`streamflow.runtime.failures`) through the source
partition's producer, so under exactly-once they commit in the same transaction as the
consumed offsets.

Example:
    >>> from streamflow.runtime.dead_letters import error_headers
    >>> dict(error_headers("app", "orders", 3, 42, ValueError("bad amount"), "decode"))[
    ...     "streamflow.exception"]
    b'builtins.ValueError'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "REPLAYED_FROM",
    "DeadLetterInfo",
    "error_headers",
    "read_error_headers",
    "replay_headers",
]


_ERROR = "streamflow.error"
_EXCEPTION = "streamflow.exception"
_STEP = "streamflow.step"
_SOURCE_TOPIC = "streamflow.source.topic"
_SOURCE_PARTITION = "streamflow.source.partition"
_SOURCE_OFFSET = "streamflow.source.offset"
_APP = "streamflow.app"
_ERROR_HEADERS = frozenset(
    {_ERROR, _EXCEPTION, _STEP, _SOURCE_TOPIC, _SOURCE_PARTITION, _SOURCE_OFFSET, _APP}
)

#: The header a replayed dead letter carries: ``<dead-letter topic>:<partition>:<offset>``.
REPLAYED_FROM = "streamflow.replayed-from"


def error_headers(
    app_id: str, topic: str, partition: int, offset: int, error: BaseException, step: str
) -> list[tuple[str, bytes]]:
    """The headers describing a dead letter (see the module documentation)."""
    kind = type(error)
    return [
        (_ERROR, str(error).encode()[:4096]),
        (_EXCEPTION, f"{kind.__module__}.{kind.__qualname__}".encode()),
        (_STEP, step.encode()),
        (_SOURCE_TOPIC, topic.encode()),
        (_SOURCE_PARTITION, str(partition).encode()),
        (_SOURCE_OFFSET, str(offset).encode()),
        (_APP, app_id.encode()),
    ]


@dataclass(frozen=True)
class DeadLetterInfo:
    """What a dead letter's headers say; ``headers`` are the original record's own.

    Fields a header does not give (a record that was not written as a dead letter) are
    ``None``.

    >>> info = DeadLetterInfo(error="bad", exception="builtins.ValueError", step="decode",
    ...                       source_topic="orders", source_partition=0, source_offset=7)
    >>> info.source_topic, info.headers
    ('orders', [])
    """

    error: str | None = None
    exception: str | None = None
    step: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    app: str | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def read_error_headers(headers: Iterable[tuple[str, bytes]]) -> DeadLetterInfo:
    """Parse a dead letter's headers back into a :class:`DeadLetterInfo`.

    The error headers follow the record's own, so the last occurrence of each wins.

    >>> headers = [("trace", b"t-1"), *error_headers("app", "orders", 3, 42,
    ...            ValueError("bad amount"), "decode")]
    >>> info = read_error_headers(headers)
    >>> info.source_topic, info.source_partition, info.source_offset, info.error
    ('orders', 3, 42, 'bad amount')
    >>> info.headers
    [('trace', b't-1')]
    """
    own: list[tuple[str, bytes]] = []
    found: dict[str, str] = {}
    for name, value in headers:
        if name in _ERROR_HEADERS:
            found[name] = (value or b"").decode("utf-8", "replace")
        else:
            own.append((name, value))
    return DeadLetterInfo(
        error=found.get(_ERROR),
        exception=found.get(_EXCEPTION),
        step=found.get(_STEP),
        source_topic=found.get(_SOURCE_TOPIC),
        source_partition=_int_or_none(found.get(_SOURCE_PARTITION)),
        source_offset=_int_or_none(found.get(_SOURCE_OFFSET)),
        app=found.get(_APP),
        headers=own,
    )


def replay_headers(
    headers: Iterable[tuple[str, bytes]], topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The headers of the dead letter at ``topic[partition]@offset`` when replayed.

    The record's own headers are kept, the error headers dropped, and
    :data:`REPLAYED_FROM` added.

    >>> replay_headers([("trace", b"t-1"), *error_headers("app", "orders", 3, 42,
    ...                ValueError("bad"), "decode")], "app-dlq", 0, 5)
    [('trace', b't-1'), ('streamflow.replayed-from', b'app-dlq:0:5')]
    """
    own = [(name, value) for name, value in headers if name not in _ERROR_HEADERS]
    return [*own, (REPLAYED_FROM, f"{topic}:{partition}:{offset}".encode())]


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
