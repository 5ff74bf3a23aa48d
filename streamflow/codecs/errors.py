"""Exceptions raised by codecs.

Every failure a codec reports is a :class:`CodecError`, so callers that only
want to skip or dead-letter bad records can catch that one class:

>>> from streamflow.codecs import IntCodec, CodecError
>>> try:
...     IntCodec().decode(b"\\x00\\x01")
... except CodecError as exc:
...     print(type(exc).__name__)
DecodeError
"""

from __future__ import annotations

__all__ = ["CodecError", "DecodeError", "RegistryError", "SchemaError", "ValidationError"]


class CodecError(Exception):
    """Base class of every error raised by :mod:`streamflow.codecs`.

    >>> issubclass(DecodeError, CodecError)
    True
    """


class DecodeError(CodecError):
    """Bytes that cannot be turned back into a value.

    Raised for an unknown schema fingerprint, truncated or trailing bytes,
    a missing single-object marker, malformed JSON or invalid UTF-8.

    >>> from streamflow.codecs import StrCodec
    >>> StrCodec().decode(b"\\xff")
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.DecodeError: invalid UTF-8 at byte 0: invalid start byte
    """


class SchemaError(CodecError):
    """An Avro schema (usually an ``.avsc`` file) that cannot be used.

    The message names the file (or ``<inline schema>``) and what is wrong.

    >>> from streamflow.codecs import AvroCodec
    >>> AvroCodec.from_schema('{"type": "record"')
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.SchemaError: <inline schema>: invalid JSON: ...
    """


class RegistryError(CodecError):
    """A Schema Registry that cannot be reached, or that refuses a request.

    It says nothing about the record itself: the same bytes may decode once the
    registry answers again (unlike :class:`DecodeError`). The message names the
    registry URL and the subject or schema id asked for.

    >>> str(RegistryError("cannot reach the Schema Registry at http://127.0.0.1:1"))
    'cannot reach the Schema Registry at http://127.0.0.1:1'
    """


class ValidationError(CodecError):
    """A value that does not fit the codec's type or schema.

    ``field`` is the dotted path of the offending value inside the record
    (``"amount"``, ``"items[2].price"``, ``'attrs["color"]'``); it is ``""``
    when the value as a whole is wrong. ``reason`` is the message without
    the path; ``str(exc)`` is ``"<field>: <reason>"``.

    >>> err = ValidationError("amount", "expected a decimal, got 'abc'")
    >>> err.field, str(err)
    ('amount', "amount: expected a decimal, got 'abc'")
    >>> str(ValidationError("", "expected an int, got 'x'"))
    "<value>: expected an int, got 'x'"
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field or '<value>'}: {reason}")

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, str]]:
        # Exception pickling replays self.args, which here is the joined message.
        return (type(self), (self.field, self.reason))
