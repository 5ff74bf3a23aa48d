"""Codecs for plain keys and values: strings, raw bytes, 64-bit ints, decimals."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import Codec
from .errors import DecodeError, ValidationError

__all__ = ["BytesCodec", "DecimalCodec", "IntCodec", "StrCodec"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _type_name(value: Any) -> str:
    return type(value).__name__


class StrCodec(Codec):
    """UTF-8 text.

    >>> codec = StrCodec()
    >>> codec.encode("naïve")
    b'na\\xc3\\xafve'
    >>> codec.decode(b"na\\xc3\\xafve")
    'naïve'
    """

    name = "str"

    def encode(self, value: Any) -> bytes:
        """Encode a ``str`` as UTF-8."""
        if not isinstance(value, str):
            raise ValidationError("", f"expected str, got {_type_name(value)} {value!r}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise ValidationError("", f"string is not encodable as UTF-8: {exc.reason}") from exc

    def decode(self, data: bytes) -> str:
        """Decode UTF-8 bytes; invalid UTF-8 raises ``DecodeError``."""
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc

    def from_json(self, obj: Any) -> str:
        """Accept a JSON string only.

        >>> StrCodec().from_json("abc")
        'abc'
        """
        if not isinstance(obj, str):
            raise ValidationError("", f"expected a JSON string, got {_type_name(obj)} {obj!r}")
        return obj


class BytesCodec(Codec):
    """Raw bytes, passed through unchanged.

    In JSON (``from_json``/``to_json``) bytes are standard base64 text.

    >>> codec = BytesCodec()
    >>> codec.decode(codec.encode(b"\\x00\\x01"))
    b'\\x00\\x01'
    >>> codec.to_json(b"\\x00\\x01"), codec.from_json("AAE=")
    ('AAE=', b'\\x00\\x01')
    """

    name = "bytes"

    def encode(self, value: Any) -> bytes:
        """Return ``value`` as ``bytes`` (``bytearray``/``memoryview`` accepted)."""
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise ValidationError("", f"expected bytes, got {_type_name(value)} {value!r}")

    def decode(self, data: bytes) -> bytes:
        """Return ``data`` as ``bytes``."""
        return bytes(data)

    def from_json(self, obj: Any) -> bytes:
        """Decode standard base64 text into bytes."""
        if not isinstance(obj, str):
            raise ValidationError("", f"expected base64 text, got {_type_name(obj)} {obj!r}")
        try:
            return base64.b64decode(obj, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("", f"expected base64 text, got {obj!r} ({exc})") from exc


class IntCodec(Codec):
    """A signed 64-bit integer as 8 big-endian bytes (Kafka's ``LongSerializer``).

    >>> codec = IntCodec()
    >>> codec.encode(-2)
    b'\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe'
    >>> codec.decode(codec.encode(2**40))
    1099511627776
    """

    name = "int"

    def encode(self, value: Any) -> bytes:
        """Encode an ``int`` in ``[-2**63, 2**63 - 1]`` (``bool`` is rejected)."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError("", f"expected int, got {_type_name(value)} {value!r}")
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValidationError("", f"expected a signed 64-bit int, got {value} (out of range)")
        return value.to_bytes(8, "big", signed=True)

    def decode(self, data: bytes) -> int:
        """Decode exactly 8 bytes; any other length raises ``DecodeError``."""
        if len(data) != 8:
            raise DecodeError(f"expected 8 bytes for a 64-bit int, got {len(data)}")
        return int.from_bytes(data, "big", signed=True)

    def from_json(self, obj: Any) -> int:
        """Accept a JSON integer (not a float, not a boolean).

        >>> IntCodec().from_json(42)
        42
        """
        if not isinstance(obj, int) or isinstance(obj, bool):
            raise ValidationError("", f"expected a JSON integer, got {_type_name(obj)} {obj!r}")
        if not _INT64_MIN <= obj <= _INT64_MAX:
            raise ValidationError("", f"expected a signed 64-bit int, got {obj} (out of range)")
        return obj


class DecimalCodec(Codec):
    """A ``Decimal`` as its ASCII string, keeping the scale (``b"1234.50"``).

    ``int`` values are accepted on encode; ``float`` is rejected because it
    is usually already rounded. NaN and infinities are rejected.

    >>> from decimal import Decimal
    >>> codec = DecimalCodec()
    >>> codec.encode(Decimal("1234.50"))
    b'1234.50'
    >>> codec.decode(b"1234.50")
    Decimal('1234.50')
    >>> codec.from_json(0.1)
    Decimal('0.1')
    """

    name = "decimal"

    def encode(self, value: Any) -> bytes:
        """Encode a finite ``Decimal`` (or ``int``) as ``str(value)`` in ASCII."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        if not isinstance(value, Decimal):
            raise ValidationError("", f"expected Decimal, got {_type_name(value)} {value!r}")
        if not value.is_finite():
            raise ValidationError("", f"expected a finite Decimal, got {value!r}")
        return str(value).encode("ascii")

    def decode(self, data: bytes) -> Decimal:
        """Parse an ASCII decimal string; anything else raises ``DecodeError``."""
        try:
            text = bytes(data).decode("ascii")
            value = Decimal(text)
        except (UnicodeDecodeError, InvalidOperation) as exc:
            raise DecodeError(f"not a decimal string: {bytes(data)[:40]!r}") from exc
        # Decimal() tolerates surrounding whitespace and NaN/Infinity; the wire does not.
        if not value.is_finite() or text != text.strip():
            raise DecodeError(f"not a finite decimal string: {bytes(data)[:40]!r}")
        return value

    def from_json(self, obj: Any) -> Decimal:
        """Accept a JSON string or number; floats go through ``str()``, never arithmetic."""
        if isinstance(obj, bool) or not isinstance(obj, (str, int, float)):
            raise ValidationError(
                "", f"expected a decimal string or number, got {_type_name(obj)} {obj!r}"
            )
        try:
            value = Decimal(obj if isinstance(obj, (str, int)) else str(obj))
        except InvalidOperation as exc:
            raise ValidationError("", f"expected a decimal, got {obj!r}") from exc
        if not value.is_finite():
            raise ValidationError("", f"expected a finite decimal, got {obj!r}")
        return value
