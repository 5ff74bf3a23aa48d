"""Codecs of the stores behind stream-stream joins: records by key and time, lists of values.

A join window store keeps, per key and record timestamp, the values seen on one side:
its keys are the key's bytes followed by the timestamp (8 bytes, big-endian, offset so
that negative times sort first), so one key's records are together, oldest first. Records
not matched yet (left and outer joins) are kept by time first, so the oldest come first.

Example:
    >>> from streamflow.codecs import StrCodec, IntCodec
    >>> keys = JoinKeyCodec(StrCodec())
    >>> keys.decode(keys.encode(("u1", 1500)))
    ('u1', 1500)
    >>> values = ListCodec(IntCodec())
    >>> values.decode(values.encode([1, 2]))
    [1, 2]
    >>> pending = UnmatchedKeyCodec(StrCodec())
    >>> pending.decode(pending.encode((1500, "L", "u1")))
    (1500, 'L', 'u1')
"""

from __future__ import annotations

from typing import Any

from streamflow.codecs.base import Codec
from streamflow.codecs.errors import DecodeError, ValidationError

__all__ = ["JoinKeyCodec", "ListCodec", "SidedCodec", "UnmatchedKeyCodec", "time_bytes"]

_TIME_OFFSET = 1 << 63
_TIME_BYTES = 8


def time_bytes(timestamp_ms: int) -> bytes:
    """A timestamp as 8 bytes that sort in time order (negative times first).

    >>> time_bytes(-1) < time_bytes(0) < time_bytes(1)
    True
    """
    return (timestamp_ms + _TIME_OFFSET).to_bytes(_TIME_BYTES, "big")


def _time_from(data: bytes) -> int:
    return int.from_bytes(data, "big") - _TIME_OFFSET


class JoinKeyCodec(Codec):
    """Encodes ``(key, timestamp_ms)`` over an ``inner`` key codec: key bytes, then time."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = f"join-key[{inner.name}]"

    def encode(self, value: Any) -> bytes:
        """``inner.encode(key)`` followed by the time."""
        key, timestamp = value
        return self.inner.encode(key) + time_bytes(timestamp)

    def decode(self, data: bytes) -> tuple[Any, int]:
        """Split stored bytes back into key and time."""
        if len(data) < _TIME_BYTES:
            raise DecodeError(f"a join store key needs at least {_TIME_BYTES} bytes")
        return self.inner.decode(data[:-_TIME_BYTES]), _time_from(data[-_TIME_BYTES:])

    def from_json(self, obj: Any) -> tuple[Any, int]:
        """Read ``{"key": ..., "timestamp": ms}``."""
        if not isinstance(obj, dict) or "key" not in obj or "timestamp" not in obj:
            raise ValidationError("", 'expected {"key": ..., "timestamp": <ms>}')
        return self.inner.from_json(obj["key"]), int(obj["timestamp"])

    def to_json(self, value: tuple[Any, int]) -> dict[str, Any]:
        """``{"key": ..., "timestamp": ms}``."""
        return {"key": self.inner.to_json(value[0]), "timestamp": value[1]}


class UnmatchedKeyCodec(Codec):
    """Encodes ``(timestamp_ms, side, key)``: time first, then ``L``/``R``, then the key."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = f"unmatched-key[{inner.name}]"

    def encode(self, value: Any) -> bytes:
        """Time, side byte, key bytes."""
        timestamp, side, key = value
        return time_bytes(timestamp) + side.encode() + self.inner.encode(key)

    def decode(self, data: bytes) -> tuple[int, str, Any]:
        """Split stored bytes back into time, side and key."""
        if len(data) < _TIME_BYTES + 1:
            raise DecodeError("an unmatched-record key needs a time and a side")
        side = data[_TIME_BYTES : _TIME_BYTES + 1].decode()
        return _time_from(data[:_TIME_BYTES]), side, self.inner.decode(data[_TIME_BYTES + 1 :])

    def from_json(self, obj: Any) -> tuple[int, str, Any]:
        """Read ``[ms, "L" or "R", key]``."""
        if not isinstance(obj, list) or len(obj) != 3:
            raise ValidationError("", 'expected [<ms>, "L" or "R", key]')
        return int(obj[0]), str(obj[1]), self.inner.from_json(obj[2])

    def to_json(self, value: tuple[int, str, Any]) -> list[Any]:
        """``[ms, side, key]``."""
        return [value[0], value[1], self.inner.to_json(value[2])]


class ListCodec(Codec):
    """Encodes a list of values over an ``inner`` codec: a count, then length-prefixed items."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = f"list[{inner.name}]"

    def encode(self, value: Any) -> bytes:
        """Count (4 bytes), then each item's length (4 bytes) and bytes."""
        if not isinstance(value, list):
            raise ValidationError("", f"expected a list, got {type(value).__name__}")
        parts = [len(value).to_bytes(4, "big")]
        for item in value:
            data = self.inner.encode(item)
            parts += [len(data).to_bytes(4, "big"), data]
        return b"".join(parts)

    def decode(self, data: bytes) -> list[Any]:
        """The items, decoded by the inner codec."""
        try:
            count = int.from_bytes(data[:4], "big")
            items, at = [], 4
            for _ in range(count):
                size = int.from_bytes(data[at : at + 4], "big")
                items.append(self.inner.decode(data[at + 4 : at + 4 + size]))
                at += 4 + size
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"not a {self.name}: {exc}") from None
        return items

    def from_json(self, obj: Any) -> list[Any]:
        """Read a JSON list."""
        if not isinstance(obj, list):
            raise ValidationError("", "expected a list")
        return [self.inner.from_json(item) for item in obj]

    def to_json(self, value: list[Any]) -> list[Any]:
        """Each item as its codec shows it."""
        return [self.inner.to_json(item) for item in value]


class SidedCodec(Codec):
    """Encodes ``(side, value)`` with the codec of that side: ``L`` or ``R``, then the value.

    >>> from streamflow.codecs import StrCodec, IntCodec
    >>> codec = SidedCodec(StrCodec(), IntCodec())
    >>> codec.decode(codec.encode(("R", 7)))
    ('R', 7)
    """

    def __init__(self, left: Codec, right: Codec) -> None:
        self.sides = {"L": left, "R": right}
        self.name = f"sided[{left.name},{right.name}]"

    def encode(self, value: Any) -> bytes:
        """The side byte, then the value in that side's codec."""
        side, item = value
        return side.encode() + self.sides[side].encode(item)

    def decode(self, data: bytes) -> tuple[str, Any]:
        """Split the side from the value."""
        side = data[:1].decode()
        if side not in self.sides:
            raise DecodeError(f"a join side is L or R, got {side!r}")
        return side, self.sides[side].decode(data[1:])

    def from_json(self, obj: Any) -> tuple[str, Any]:
        """Read ``["L" or "R", value]``."""
        return obj[0], self.sides[obj[0]].from_json(obj[1])

    def to_json(self, value: tuple[str, Any]) -> list[Any]:
        """``[side, value]``."""
        return [value[0], self.sides[value[0]].to_json(value[1])]
