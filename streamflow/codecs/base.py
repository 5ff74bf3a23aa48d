"""The :class:`Codec` interface shared by every key/value codec."""

from __future__ import annotations

import abc
import base64
import datetime as _dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["Codec", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Convert a native value into plain types that ``orjson.dumps`` accepts.

    - ``Decimal`` -> ``str(value)``, which keeps the scale (``"12.50"``);
    - ``datetime`` / ``date`` / ``time`` -> ISO-8601 via ``isoformat()``;
    - ``bytes`` / ``bytearray`` / ``memoryview`` -> standard base64 text;
    - ``UUID`` -> its canonical string;
    - mappings -> dicts (keys made ``str``), lists/tuples/sets -> lists,
      recursively. Everything else is returned unchanged.

    >>> from decimal import Decimal
    >>> to_jsonable({"amount": Decimal("12.50"), "raw": b"hi", "tags": ("a",)})
    {'amount': '12.50', 'raw': 'aGk=', 'tags': ['a']}
    >>> import datetime as dt
    >>> to_jsonable(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc))
    '2024-05-01T12:00:00+00:00'
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    # datetime is a subclass of date, so one check covers both.
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return value


class Codec(abc.ABC):
    """Turns the keys or values of a topic into bytes and back.

    Subclasses implement :meth:`encode`, :meth:`decode` and :meth:`from_json`;
    :meth:`decode_many` and :meth:`to_json` have generic defaults.

    Errors: values that do not fit raise
    :class:`~streamflow.codecs.errors.ValidationError`, bytes that cannot be read
    raise :class:`~streamflow.codecs.errors.DecodeError`.

    >>> from streamflow.codecs import StrCodec
    >>> codec: Codec = StrCodec()
    >>> codec.decode(codec.encode("héllo"))
    'héllo'
    >>> codec.decode_many([b"a", b"b"])
    ['a', 'b']
    """

    #: Short identifier of the codec, e.g. ``"str"`` or ``"avro:ns.Record"``.
    name: str = "codec"

    @abc.abstractmethod
    def encode(self, value: Any) -> bytes:
        """Serialize ``value``; raise ``ValidationError`` if it does not fit."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> Any:
        """Deserialize ``data``; raise ``DecodeError`` if it cannot be read."""

    def decode_many(self, datas: list[bytes]) -> list[Any]:
        """Decode a batch; the result has one value per input, in order.

        The first undecodable item raises ``DecodeError``.
        """
        decode = self.decode
        return [decode(d) for d in datas]

    @abc.abstractmethod
    def from_json(self, obj: Any) -> Any:
        """Convert a JSON-decoded object into this codec's native value.

        Raises ``ValidationError`` (with the offending field path) when ``obj``
        cannot represent a valid value.
        """

    def for_topic(self, topic: str, *, is_key: bool) -> Codec:
        """The codec to use for the keys (``is_key``) or values of ``topic``.

        :class:`~streamflow.topics.Topic` calls this once per codec it is given. Codecs
        whose bytes do not depend on the topic return themselves; a codec that does (the
        Schema Registry one names its subject after the topic) returns a bound copy.

        >>> from streamflow.codecs import StrCodec
        >>> codec = StrCodec()
        >>> codec.for_topic("orders", is_key=True) is codec
        True
        """
        return self

    def to_json(self, value: Any) -> Any:
        """Convert a native value into something ``orjson.dumps`` accepts.

        Decimals become strings that keep their scale, datetimes ISO-8601
        strings and bytes base64 text (see :func:`to_jsonable`).
        """
        return to_jsonable(value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
