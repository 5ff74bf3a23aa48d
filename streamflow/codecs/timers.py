"""The key codec of a processor's timer store: due time first, so due timers come first.

Example:
    >>> from streamflow.codecs import StrCodec
    >>> codec = TimerKeyCodec(StrCodec())
    >>> codec.decode(codec.encode((1500, "order-1")))
    (1500, 'order-1')
    >>> codec.encode((1, "b")) < codec.encode((2, "a"))
    True
"""

from __future__ import annotations

from typing import Any

from streamflow.codecs.base import Codec
from streamflow.codecs.errors import DecodeError, ValidationError
from streamflow.codecs.join import time_bytes

__all__ = ["TimerKeyCodec"]

_TIME_BYTES = 8
_TIME_OFFSET = 1 << 63


class TimerKeyCodec(Codec):
    """Encodes ``(due_ms, key)``: the due time (8 bytes, in time order), then the key."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = f"timer-key[{inner.name}]"

    def encode(self, value: Any) -> bytes:
        """The due time's bytes, then ``inner.encode(key)``."""
        due, key = value
        return time_bytes(due) + self.inner.encode(key)

    def decode(self, data: bytes) -> tuple[int, Any]:
        """Split the bytes back into due time and key."""
        if len(data) < _TIME_BYTES:
            raise DecodeError(f"a timer key needs at least {_TIME_BYTES} bytes")
        due = int.from_bytes(data[:_TIME_BYTES], "big") - _TIME_OFFSET
        return due, self.inner.decode(data[_TIME_BYTES:])

    def from_json(self, obj: Any) -> tuple[int, Any]:
        """Read ``{"due": ms, "key": ...}``."""
        if not isinstance(obj, dict) or "due" not in obj or "key" not in obj:
            raise ValidationError("", 'expected {"due": <ms>, "key": ...}')
        return int(obj["due"]), self.inner.from_json(obj["key"])

    def to_json(self, value: tuple[int, Any]) -> dict[str, Any]:
        """``{"due": ms, "key": ...}``."""
        return {"due": value[0], "key": self.inner.to_json(value[1])}
