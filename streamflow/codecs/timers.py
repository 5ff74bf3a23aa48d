"""The key codec of a processor's timer store: the clock, then the due time, so one clock's
due timers come first.

A timer is kept under ``(clock, due_ms, key)``: ``clock`` is ``"e"`` (event time: due when
stream time reaches it) or ``"w"`` (wall-clock time).

Example:
    >>> from streamflow.codecs import StrCodec
    >>> codec = TimerKeyCodec(StrCodec())
    >>> codec.decode(codec.encode(("e", 1500, "order-1")))
    ('e', 1500, 'order-1')
    >>> codec.encode(("e", 1, "b")) < codec.encode(("e", 2, "a")) < codec.encode(("w", 0, "a"))
    True
"""

from __future__ import annotations

from typing import Any

from streamflow.codecs.base import Codec
from streamflow.codecs.errors import DecodeError, ValidationError
from streamflow.codecs.join import time_bytes

__all__ = ["EVENT_TIME", "WALL_CLOCK", "TimerKeyCodec", "due_range"]

#: The clocks a timer can follow.
EVENT_TIME = "e"
WALL_CLOCK = "w"
_CLOCKS = (EVENT_TIME, WALL_CLOCK)

_TIME_BYTES = 8
_TIME_OFFSET = 1 << 63


def due_range(clock: str, now_ms: int) -> tuple[bytes, bytes]:
    """The stored-key range of ``clock``'s timers due at ``now_ms``.

    >>> start, end = due_range("w", 0)
    >>> start, len(end)
    (b'w', 9)
    """
    return clock.encode(), clock.encode() + time_bytes(now_ms + 1)


class TimerKeyCodec(Codec):
    """Encodes ``(clock, due_ms, key)``: the clock byte, the due time (8 bytes, in time
    order), then the key."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = f"timer-key[{inner.name}]"

    def encode(self, value: Any) -> bytes:
        """Clock, due time, then ``inner.encode(key)``."""
        clock, due, key = value
        if clock not in _CLOCKS:
            raise ValidationError("", f"a timer's clock is 'e' or 'w', got {clock!r}")
        return clock.encode() + time_bytes(due) + self.inner.encode(key)

    def decode(self, data: bytes) -> tuple[str, int, Any]:
        """Split the bytes back into clock, due time and key."""
        if len(data) < 1 + _TIME_BYTES or data[:1] not in (b"e", b"w"):
            raise DecodeError("a timer key is a clock byte, a due time and a key")
        due = int.from_bytes(data[1 : 1 + _TIME_BYTES], "big") - _TIME_OFFSET
        return data[:1].decode(), due, self.inner.decode(data[1 + _TIME_BYTES :])

    def from_json(self, obj: Any) -> tuple[str, int, Any]:
        """Read ``{"clock": "e" or "w", "due": ms, "key": ...}``."""
        if not isinstance(obj, dict) or not {"clock", "due", "key"} <= obj.keys():
            raise ValidationError("", 'expected {"clock": "e" or "w", "due": <ms>, "key": ...}')
        return obj["clock"], int(obj["due"]), self.inner.from_json(obj["key"])

    def to_json(self, value: tuple[str, int, Any]) -> dict[str, Any]:
        """``{"clock": ..., "due": ms, "key": ...}``."""
        return {"clock": value[0], "due": value[1], "key": self.inner.to_json(value[2])}
