"""Key/value codecs for topics: bytes on the wire, Python values in the app.

>>> from decimal import Decimal
>>> from streamflow.codecs import resolve_codec
>>> codec = resolve_codec("json")
>>> codec.decode(codec.encode({"total": Decimal("9.90")}))
{'total': '9.90'}

Note: ``streamflow.codecs.avro`` here is the :func:`avro` loader function, which
shadows the submodule of the same name as an attribute; import the module's
other names with ``from streamflow.codecs.avro import ...``.
"""

from __future__ import annotations

from .avro import REGISTRY_URL_ENV, SINGLE_OBJECT_MARKER, AvroCodec, avro
from .avro_compat import check_compatibility
from .avro_schema import AvroSchema, find_schema_file, parse_avro_schema
from .base import Codec, to_jsonable
from .errors import CodecError, DecodeError, RegistryError, SchemaError, ValidationError
from .json import JsonCodec
from .primitive import BytesCodec, DecimalCodec, IntCodec, StrCodec
from .registry import CODEC_SHORTHANDS, resolve_codec

__all__ = [
    "CODEC_SHORTHANDS",
    "REGISTRY_URL_ENV",
    "SINGLE_OBJECT_MARKER",
    "AvroCodec",
    "AvroSchema",
    "BytesCodec",
    "Codec",
    "CodecError",
    "DecimalCodec",
    "DecodeError",
    "IntCodec",
    "JsonCodec",
    "RegistryError",
    "SchemaError",
    "StrCodec",
    "ValidationError",
    "avro",
    "check_compatibility",
    "find_schema_file",
    "parse_avro_schema",
    "resolve_codec",
    "to_jsonable",
]
