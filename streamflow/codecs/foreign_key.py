"""Codecs of foreign-key table joins: subscriptions, their store, and the responses.

A foreign-key join (``left.join(right, joiner, foreign_key=...)``) works in two hops, as
Kafka Streams' (KIP-213):

1. each change of a left row sends a *subscription* to the partition of the right table
   that holds its foreign key: ``(foreign_key, (op, left_key, value_hash, partition))``
   where ``op`` is ``+`` (subscribe) or ``-`` (unsubscribe, the row left that foreign key)
   and ``partition`` is the left row's;
2. the right side keeps the subscriptions by ``(foreign_key, left_key)`` (the value:
   ``(value_hash, partition)``) and answers every subscription, and every change of a right
   row, with a *response* written to the left row's partition, whichever partitioner wrote
   the left table's topic: ``(left_key, (value_hash, right_value))``.

The hash is of the left value the subscription was sent for: a response whose hash is not
the hash of the left row's current value answers an older version of the row and is
dropped, so results are right when a row changes its foreign key.

Example:
    >>> from streamflow.codecs import IntCodec, StrCodec
    >>> subscriptions = SubscriptionCodec(StrCodec())
    >>> subscriptions.decode(subscriptions.encode(("+", "order-1", b"h" * 16, 3)))
    ('+', 'order-1', b'hhhhhhhhhhhhhhhh', 3)
    >>> responses = ResponseCodec(IntCodec())
    >>> responses.decode(responses.encode((b"h" * 16, None)))
    (b'hhhhhhhhhhhhhhhh', None)
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from streamflow.codecs.base import Codec
from streamflow.codecs.errors import DecodeError, ValidationError

__all__ = [
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "ResponseCodec",
    "SubscriptionCodec",
    "SubscriptionKeyCodec",
    "SubscriptionValueCodec",
    "prefix_end",
    "value_hash",
]

SUBSCRIBE = "+"
UNSUBSCRIBE = "-"
_HASH_BYTES = 16
_NO_VALUE = b""
_OPS = {SUBSCRIBE: b"+", UNSUBSCRIBE: b"-"}


def value_hash(codec: Codec, value: Any) -> bytes:
    """A 16-byte digest of ``value`` as ``codec`` writes it; ``b""`` for ``None``.

    >>> from streamflow.codecs import StrCodec
    >>> len(value_hash(StrCodec(), "a")), value_hash(StrCodec(), None)
    (16, b'')
    """
    if value is None:
        return _NO_VALUE
    return hashlib.blake2b(codec.encode(value), digest_size=_HASH_BYTES).digest()


def prefix_end(prefix: bytes) -> bytes:
    """The first byte string after every string that starts with ``prefix``.

    >>> prefix_end(b"ab"), prefix_end(b"a\\xff")
    (b'ac', b'b')
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\xff" * (len(prefix) + 1)
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _hash_from(data: bytes) -> bytes:
    if len(data) not in (0, _HASH_BYTES):
        raise DecodeError(f"a foreign-key join hash has {_HASH_BYTES} bytes, got {len(data)}")
    return data


class SubscriptionCodec(Codec):
    """Encodes ``(op, left_key, hash, partition)``: the op byte, the left partition (4
    bytes), the hash length and hash, then the key."""

    def __init__(self, key_codec: Codec) -> None:
        self.key_codec = key_codec
        self.name = f"fk-subscription[{key_codec.name}]"

    def encode(self, value: Any) -> bytes:
        """Op, partition, hash (length-prefixed), then ``key_codec.encode(left_key)``."""
        op, key, digest, partition = value
        if op not in _OPS:
            raise ValidationError("", f"a subscription op is + or -, got {op!r}")
        return (
            _OPS[op]
            + partition.to_bytes(4, "big")
            + bytes([len(digest)])
            + digest
            + self.key_codec.encode(key)
        )

    def decode(self, data: bytes) -> tuple[str, Any, bytes, int]:
        """Split the bytes back into op, left key, hash and partition."""
        if len(data) < 6 or data[:1] not in (b"+", b"-"):
            raise DecodeError("a foreign-key subscription starts with + or -, a partition, a hash")
        partition = int.from_bytes(data[1:5], "big")
        size = data[5]
        digest = _hash_from(data[6 : 6 + size])
        return data[:1].decode(), self.key_codec.decode(data[6 + size :]), digest, partition

    def from_json(self, obj: Any) -> tuple[str, Any, bytes, int]:
        """Read ``[op, key, base64 hash, partition]``."""
        if not isinstance(obj, list) or len(obj) != 4:
            raise ValidationError("", 'expected ["+" or "-", key, "<base64 hash>", partition]')
        return obj[0], self.key_codec.from_json(obj[1]), base64.b64decode(obj[2]), int(obj[3])

    def to_json(self, value: tuple[str, Any, bytes, int]) -> list[Any]:
        """``[op, key, base64 hash, partition]``."""
        op, key, digest, partition = value
        return [op, self.key_codec.to_json(key), base64.b64encode(digest).decode(), partition]


class SubscriptionValueCodec(Codec):
    """Encodes a stored subscription, ``(hash, partition)``: the partition (4 bytes), then
    the hash.

    >>> codec = SubscriptionValueCodec()
    >>> codec.decode(codec.encode((b"h" * 16, 5)))
    (b'hhhhhhhhhhhhhhhh', 5)
    """

    name = "fk-subscription-value"

    def encode(self, value: Any) -> bytes:
        """Partition, then hash."""
        digest, partition = value
        return partition.to_bytes(4, "big") + digest

    def decode(self, data: bytes) -> tuple[bytes, int]:
        """Split the bytes back into hash and partition."""
        if len(data) < 4:
            raise DecodeError("a stored foreign-key subscription needs a partition")
        return _hash_from(data[4:]), int.from_bytes(data[:4], "big")

    def from_json(self, obj: Any) -> tuple[bytes, int]:
        """Read ``{"hash": "<base64>", "partition": n}``."""
        if not isinstance(obj, dict) or "hash" not in obj or "partition" not in obj:
            raise ValidationError("", 'expected {"hash": "<base64>", "partition": <n>}')
        return base64.b64decode(obj["hash"]), int(obj["partition"])

    def to_json(self, value: tuple[bytes, int]) -> dict[str, Any]:
        """``{"hash": "<base64>", "partition": n}``."""
        return {"hash": base64.b64encode(value[0]).decode(), "partition": value[1]}


class ResponseCodec(Codec):
    """Encodes ``(hash, right_value)``; a missing right value (``None``) is kept as such."""

    def __init__(self, value_codec: Codec) -> None:
        self.value_codec = value_codec
        self.name = f"fk-response[{value_codec.name}]"

    def encode(self, value: Any) -> bytes:
        """Hash (length-prefixed), a presence byte, then the right value's bytes."""
        digest, right = value
        head = bytes([len(digest)]) + digest
        if right is None:
            return head + b"\x00"
        return head + b"\x01" + self.value_codec.encode(right)

    def decode(self, data: bytes) -> tuple[bytes, Any]:
        """Split the bytes back into hash and right value (or ``None``)."""
        if not data:
            raise DecodeError("an empty foreign-key join response")
        size = data[0]
        digest = _hash_from(data[1 : 1 + size])
        flag = data[1 + size : 2 + size]
        if flag == b"\x00":
            return digest, None
        if flag != b"\x01":
            raise DecodeError("a foreign-key join response lacks its presence byte")
        return digest, self.value_codec.decode(data[2 + size :])

    def from_json(self, obj: Any) -> tuple[bytes, Any]:
        """Read ``["<base64 hash>", value or null]``."""
        if not isinstance(obj, list) or len(obj) != 2:
            raise ValidationError("", 'expected ["<base64 hash>", value or null]')
        right = None if obj[1] is None else self.value_codec.from_json(obj[1])
        return base64.b64decode(obj[0]), right

    def to_json(self, value: tuple[bytes, Any]) -> list[Any]:
        """``[base64 hash, value or null]``."""
        digest, right = value
        shown = None if right is None else self.value_codec.to_json(right)
        return [base64.b64encode(digest).decode(), shown]


class SubscriptionKeyCodec(Codec):
    """Encodes ``(foreign_key, left_key)`` so one foreign key's subscriptions sort together:
    the foreign key's length (4 bytes) and bytes, then the left key's bytes.

    >>> from streamflow.codecs import StrCodec
    >>> codec = SubscriptionKeyCodec(StrCodec(), StrCodec())
    >>> codec.decode(codec.encode(("c1", "order-1")))
    ('c1', 'order-1')
    >>> codec.encode(("c1", "order-1")).startswith(codec.prefix("c1"))
    True
    """

    def __init__(self, foreign_key_codec: Codec, key_codec: Codec) -> None:
        self.foreign_key_codec = foreign_key_codec
        self.key_codec = key_codec
        self.name = f"fk-subscription-key[{foreign_key_codec.name},{key_codec.name}]"

    def prefix(self, foreign_key: Any) -> bytes:
        """The bytes every stored key of ``foreign_key`` starts with."""
        raw = self.foreign_key_codec.encode(foreign_key)
        return len(raw).to_bytes(4, "big") + raw

    def encode(self, value: Any) -> bytes:
        """The foreign key's prefix, then the left key."""
        foreign_key, key = value
        return self.prefix(foreign_key) + self.key_codec.encode(key)

    def decode(self, data: bytes) -> tuple[Any, Any]:
        """Split the bytes back into foreign key and left key."""
        size = int.from_bytes(data[:4], "big")
        if len(data) < 4 + size:
            raise DecodeError("a foreign-key subscription key is cut short")
        return (
            self.foreign_key_codec.decode(data[4 : 4 + size]),
            self.key_codec.decode(data[4 + size :]),
        )

    def from_json(self, obj: Any) -> tuple[Any, Any]:
        """Read ``{"foreign_key": ..., "key": ...}``."""
        if not isinstance(obj, dict) or "foreign_key" not in obj or "key" not in obj:
            raise ValidationError("", 'expected {"foreign_key": ..., "key": ...}')
        return self.foreign_key_codec.from_json(obj["foreign_key"]), self.key_codec.from_json(
            obj["key"]
        )

    def to_json(self, value: tuple[Any, Any]) -> dict[str, Any]:
        """``{"foreign_key": ..., "key": ...}``."""
        return {
            "foreign_key": self.foreign_key_codec.to_json(value[0]),
            "key": self.key_codec.to_json(value[1]),
        }
