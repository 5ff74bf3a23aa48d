"""The key codecs of windowed tables: the grouping key's bytes, then the window start
(and, for sessions, whose length varies, the end).

Stored keys sort by key, then by window start (8 bytes, big-endian), so one key's windows
are next to each other in RocksDB and come out oldest first.

Example:
    >>> from streamflow.codecs import StrCodec
    >>> from streamflow.dsl.windows import Windowed
    >>> codec = WindowedCodec(StrCodec(), size_ms=60_000)
    >>> codec.decode(codec.encode(Windowed("u1", 120_000, 180_000)))
    Windowed(key='u1', start=120000, end=180000)
    >>> codec.to_json(Windowed("u1", 0, 60_000))
    {'key': 'u1', 'start': 0, 'end': 60000}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamflow.codecs.base import Codec
from streamflow.codecs.errors import DecodeError, ValidationError
from streamflow.dsl.windows import Windowed

__all__ = ["WINDOW_START_BYTES", "SessionWindowedCodec", "WindowedCodec", "window_start"]

#: Bytes of the window start at the end of a stored windowed key.
WINDOW_START_BYTES = 8


def window_start(stored_key: bytes) -> int:
    """The window start (ms) of a stored windowed key, without decoding the key itself.

    >>> window_start(b"u1" + (60_000).to_bytes(WINDOW_START_BYTES, "big"))
    60000
    """
    return int.from_bytes(stored_key[-WINDOW_START_BYTES:], "big")


class WindowedCodec(Codec):
    """Encodes :class:`~streamflow.dsl.windows.Windowed` keys over an ``inner`` key codec."""

    #: Bytes after the grouping key's in a stored key.
    suffix_bytes = WINDOW_START_BYTES

    def __init__(self, inner: Codec, size_ms: int) -> None:
        self.inner = inner
        self.size_ms = size_ms
        self.name = f"windowed[{inner.name}]"

    def retention_time(self, stored_key: bytes) -> int:
        """The time a stored window's retention counts from: its start."""
        return window_start(stored_key)

    def encode(self, value: Any) -> bytes:
        """``inner.encode(key)`` followed by the window start."""
        if not isinstance(value, Windowed):
            raise ValidationError("", f"expected a Windowed key, got {type(value).__name__}")
        return self.inner.encode(value.key) + value.start.to_bytes(WINDOW_START_BYTES, "big")

    def decode(self, data: bytes) -> Windowed:
        """Split stored bytes back into key and window."""
        if len(data) < WINDOW_START_BYTES:
            raise DecodeError(f"a windowed key needs at least {WINDOW_START_BYTES} bytes")
        start = window_start(data)
        return Windowed(self.inner.decode(data[:-WINDOW_START_BYTES]), start, start + self.size_ms)

    def prefix(self, key: Any) -> bytes:
        """The stored-key prefix shared by every window of ``key``."""
        return self.inner.encode(key)

    def from_json(self, obj: Any) -> Windowed:
        """Read ``{"key": ..., "start": ms}``."""
        if not isinstance(obj, Mapping) or "key" not in obj or "start" not in obj:
            raise ValidationError("", 'expected {"key": ..., "start": <ms>}')
        start = int(obj["start"])
        return Windowed(self.inner.from_json(obj["key"]), start, start + self.size_ms)

    def to_json(self, value: Windowed) -> dict[str, Any]:
        """``{"key": ..., "start": ms, "end": ms}``."""
        return {"key": self.inner.to_json(value.key), "start": value.start, "end": value.end}


class SessionWindowedCodec(WindowedCodec):
    """Encodes session keys: ``inner.encode(key)``, the session start, then its end.

    >>> from streamflow.codecs import StrCodec
    >>> codec = SessionWindowedCodec(StrCodec())
    >>> codec.decode(codec.encode(Windowed("u1", 1_000, 4_000)))
    Windowed(key='u1', start=1000, end=4000)
    >>> codec.retention_time(codec.encode(Windowed("u1", 1_000, 4_000)))
    4000
    """

    suffix_bytes = 2 * WINDOW_START_BYTES

    def __init__(self, inner: Codec) -> None:
        super().__init__(inner, size_ms=0)
        self.name = f"session[{inner.name}]"

    def retention_time(self, stored_key: bytes) -> int:
        """A session's retention counts from its end."""
        return window_start(stored_key)

    def encode(self, value: Any) -> bytes:
        """``inner.encode(key)``, then start and end."""
        return super().encode(value) + value.end.to_bytes(WINDOW_START_BYTES, "big")

    def decode(self, data: bytes) -> Windowed:
        """Split stored bytes back into key and session."""
        if len(data) < self.suffix_bytes:
            raise DecodeError(f"a session key needs at least {self.suffix_bytes} bytes")
        end = window_start(data)
        start = window_start(data[:-WINDOW_START_BYTES])
        return Windowed(self.inner.decode(data[: -self.suffix_bytes]), start, end)

    def from_json(self, obj: Any) -> Windowed:
        """Read ``{"key": ..., "start": ms, "end": ms}``."""
        if not isinstance(obj, Mapping) or not {"key", "start", "end"} <= obj.keys():
            raise ValidationError("", 'expected {"key": ..., "start": <ms>, "end": <ms>}')
        return Windowed(self.inner.from_json(obj["key"]), int(obj["start"]), int(obj["end"]))
