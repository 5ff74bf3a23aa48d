"""The value codec of a re-grouped table's repartition topic: a value to add or subtract.

When a table is re-grouped (``table.group_by(...)``), each update sends the key's old value,
to be subtracted from its old group, and its new value, to be added to its new group. On
the repartition topic such a value is one byte (``+`` or ``-``) followed by the value as the
table's own codec writes it.

Example:
    >>> from streamflow.codecs import DecimalCodec
    >>> from decimal import Decimal
    >>> codec = ChangeCodec(DecimalCodec())
    >>> codec.decode(codec.encode(("-", Decimal("2.50"))))
    ('-', Decimal('2.50'))
"""

from __future__ import annotations

from typing import Any

from streamflow.codecs.base import Codec
from streamflow.codecs.errors import DecodeError, ValidationError

__all__ = ["ADD", "SUBTRACT", "ChangeCodec"]

ADD = "+"
SUBTRACT = "-"
_SIGNS = {ADD: b"+", SUBTRACT: b"-"}


class ChangeCodec(Codec):
    """Encodes ``(sign, value)`` pairs over the ``inner`` codec of the values."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = f"change[{inner.name}]"

    def encode(self, value: Any) -> bytes:
        """The sign byte, then ``inner.encode(value)``."""
        if not (isinstance(value, tuple) and len(value) == 2 and value[0] in _SIGNS):
            raise ValidationError("", f"expected ('+' or '-', value), got {value!r}")
        return _SIGNS[value[0]] + self.inner.encode(value[1])

    def decode(self, data: bytes) -> tuple[str, Any]:
        """Split the sign from the value."""
        sign = data[:1]
        if sign not in (b"+", b"-"):
            raise DecodeError(f"a table change starts with + or -, got {sign!r}")
        return sign.decode(), self.inner.decode(data[1:])

    def from_json(self, obj: Any) -> tuple[str, Any]:
        """Read ``["+", value]``."""
        if not (isinstance(obj, list | tuple) and len(obj) == 2 and obj[0] in _SIGNS):
            raise ValidationError("", 'expected ["+" or "-", value]')
        return obj[0], self.inner.from_json(obj[1])

    def to_json(self, value: tuple[str, Any]) -> list[Any]:
        """``[sign, value]``."""
        return [value[0], self.inner.to_json(value[1])]
