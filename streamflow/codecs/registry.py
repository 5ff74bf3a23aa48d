"""Turn a codec spec (an instance or a shorthand string) into a :class:`Codec`."""

from __future__ import annotations

import os

from .avro import avro
from .base import Codec
from .json import JsonCodec
from .primitive import BytesCodec, DecimalCodec, IntCodec, StrCodec

__all__ = ["CODEC_SHORTHANDS", "resolve_codec"]

_SIMPLE: dict[str, type[Codec]] = {
    "str": StrCodec,
    "bytes": BytesCodec,
    "json": JsonCodec,
    "int": IntCodec,
    "decimal": DecimalCodec,
}

#: Every accepted shorthand, for help texts and error messages.
CODEC_SHORTHANDS: tuple[str, ...] = (*_SIMPLE, "avro:<name>")


def resolve_codec(
    spec: Codec | str,
    *,
    schemas_dir: str | os.PathLike[str] | None = None,
    app_file: str | os.PathLike[str] | None = None,
) -> Codec:
    """Return ``spec`` if it is a :class:`Codec`, else build one from a shorthand.

    Shorthands: ``"str"``, ``"bytes"``, ``"json"``, ``"int"``, ``"decimal"`` and
    ``"avro:<name>"``, which loads ``<name>.avsc`` as :func:`~streamflow.codecs.avro`
    does (``schemas_dir`` / ``app_file`` are passed through). Anything else
    raises ``ValueError`` listing the valid shorthands.

    >>> resolve_codec("int").encode(1)
    b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01'
    >>> resolve_codec("avro:order_event", schemas_dir="schemas").record_name
    'streamflow.examples.OrderEvent'
    >>> resolve_codec("yaml")
    Traceback (most recent call last):
    ...
    ValueError: unknown codec 'yaml'; expected a Codec instance or one of: str, bytes, json, \
int, decimal, avro:<name>
    """
    if isinstance(spec, Codec):
        return spec
    if isinstance(spec, str):
        if spec in _SIMPLE:
            return _SIMPLE[spec]()
        if spec.startswith("avro:") and spec[len("avro:") :].strip():
            return avro(spec[len("avro:") :].strip(), schemas_dir, app_file=app_file)
    raise ValueError(
        f"unknown codec {spec!r}; expected a Codec instance or one of: "
        + ", ".join(CODEC_SHORTHANDS)
    )
