"""JSON values via orjson."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import orjson

from .base import Codec
from .errors import DecodeError, ValidationError

__all__ = ["JsonCodec"]


def _default(value: Any) -> Any:
    # orjson calls this only for types it cannot serialize natively
    # (it already handles datetime, date, time, UUID, dataclasses, enums).
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"non-finite Decimal {value!r} has no JSON form")
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonCodec(Codec):
    """Any JSON-serializable value, encoded with orjson as compact UTF-8.

    ``Decimal`` is written as a JSON *string* so no digits are lost
    (``Decimal("12.50")`` -> ``"12.50"``); bytes become base64 text; datetimes
    use orjson's RFC 3339 form. Decoding returns plain JSON types (``dict``,
    ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``): a decimal comes
    back as the string it was written as.

    >>> from decimal import Decimal
    >>> codec = JsonCodec()
    >>> codec.encode({"id": 1, "amount": Decimal("12.50")})
    b'{"id":1,"amount":"12.50"}'
    >>> codec.decode(b'{"id":1,"amount":"12.50"}')
    {'id': 1, 'amount': '12.50'}
    """

    name = "json"

    def encode(self, value: Any) -> bytes:
        """Serialize ``value``; unserializable values raise ``ValidationError``."""
        try:
            return orjson.dumps(value, default=_default)
        except orjson.JSONEncodeError as exc:
            raise ValidationError("", f"value is not JSON serializable: {exc}") from exc

    def decode(self, data: bytes) -> Any:
        """Parse UTF-8 JSON; malformed input raises ``DecodeError``."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"invalid JSON: {exc}") from exc

    def from_json(self, obj: Any) -> Any:
        """Return ``obj`` unchanged: JSON values are already native for this codec.

        >>> JsonCodec().from_json({"a": [1, 2]})
        {'a': [1, 2]}
        """
        return obj
