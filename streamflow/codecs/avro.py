"""Avro records in single-object encoding, with writer-schema evolution.

Wire format (Avro spec, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
            Parsing Canonical Form | Avro binary body

A reader looks the fingerprint up among the versions of its record it knows
(the ``*.avsc`` files in the schemas folder with the same full record name) and
resolves the writer's data into its own schema, so old messages gain new
fields' defaults.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from .avro_schema import (
    AvroSchema,
    find_schema_file,
    find_schema_versions,
    load_schema_file,
    parse_avro_schema,
)
from .base import Codec
from .errors import DecodeError, SchemaError, ValidationError

__all__ = ["REGISTRY_URL_ENV", "SINGLE_OBJECT_MARKER", "AvroCodec", "avro"]

#: The two bytes that start every single-object encoded Avro message.
SINGLE_OBJECT_MARKER = b"\xc3\x01"
_HEADER_LEN = 10

#: Environment variable with a Schema Registry URL; when set, :func:`avro` codecs use the
#: registry's wire format (see :mod:`streamflow.codecs.avro_registry`).
REGISTRY_URL_ENV = "STREAMFLOW_SCHEMA_REGISTRY_URL"

SchemaLike = Mapping[str, Any] | str


class AvroCodec(Codec):
    """Avro record values in single-object encoding.

    Native values are dicts as fastavro reads and writes them: ``decimal``
    fields are ``Decimal`` (at the schema's scale), ``timestamp-millis`` fields
    are timezone-aware ``datetime`` in UTC (sub-millisecond digits are dropped
    when encoding), enums are ``str``.

    With ``validate=True`` (the default) every value is checked against the
    schema before encoding, so mistakes fastavro would silently accept (unknown
    keys, ``True`` for an int, naive datetimes, too many decimal digits) raise
    ``ValidationError`` naming the field.

    >>> from decimal import Decimal
    >>> codec = AvroCodec.from_schema({
    ...     "type": "record", "name": "Payment", "namespace": "demo",
    ...     "fields": [{"name": "amount", "type": {"type": "bytes",
    ...                 "logicalType": "decimal", "precision": 8, "scale": 2}}]})
    >>> codec.record_name
    'demo.Payment'
    >>> data = codec.encode({"amount": Decimal("12.50")})
    >>> data[:2] == SINGLE_OBJECT_MARKER, data[2:10] == codec.fingerprint.to_bytes(8, "little")
    (True, True)
    >>> codec.decode(data)
    {'amount': Decimal('12.50')}
    >>> codec.encode({"amount": Decimal("1.005")})
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.ValidationError: amount: expected a decimal(8,2) with at most 2 \
decimal places, got '1.005' (3 decimal places); round it first, e.g. \
value.quantize(Decimal('0.01'))
    """

    def __init__(
        self,
        schema: SchemaLike | AvroSchema,
        *,
        schemas_dir: str | os.PathLike[str] | None = None,
        writer_schemas: Iterable[SchemaLike | AvroSchema] = (),
        validate: bool = True,
    ) -> None:
        """Build a codec whose reader (and writer) schema is ``schema``.

        ``schemas_dir``: folder scanned for other versions of the same record
        (``*.avsc`` files with the same full name), registered as known writer
        schemas. ``writer_schemas``: further writer schemas to register.
        """
        self._schema = schema if isinstance(schema, AvroSchema) else parse_avro_schema(schema)
        self.record_name: str = self._schema.fullname
        self.name = f"avro:{self.record_name}"
        self._validate = validate
        self._header = SINGLE_OBJECT_MARKER + self._schema.fingerprint_bytes
        self._writers: dict[bytes, AvroSchema] = {self._schema.fingerprint_bytes: self._schema}
        if schemas_dir is not None:
            for version in find_schema_versions(schemas_dir, self.record_name):
                self._register(version)
        for writer in writer_schemas:
            self.register_writer_schema(writer)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        schemas_dir: str | os.PathLike[str] | None = None,
        validate: bool = True,
        **options: Any,
    ) -> AvroCodec:
        """Load the reader schema from an ``.avsc`` file.

        Other versions of the record are looked for in ``schemas_dir``, by
        default the file's own folder. Problems raise ``SchemaError`` naming
        the file. ``options`` go to the constructor (subclasses take more).

        >>> AvroCodec.from_file("schemas/order_event.avsc").record_name  # from the repo root
        'streamflow.examples.OrderEvent'
        """
        path = Path(path)
        schema = parse_avro_schema(load_schema_file(path), source=str(path))
        return cls(
            schema,
            schemas_dir=path.parent if schemas_dir is None else schemas_dir,
            validate=validate,
            **options,
        )

    @classmethod
    def from_schema(
        cls,
        schema: SchemaLike,
        *,
        schemas_dir: str | os.PathLike[str] | None = None,
        validate: bool = True,
        **options: Any,
    ) -> AvroCodec:
        """Build from a schema dict or JSON text; no folder is scanned unless given.

        ``options`` go to the constructor (subclasses take more).

        >>> AvroCodec.from_schema('{"type": "record", "name": "R", '
        ...                       '"fields": [{"name": "x", "type": "int"}]}').record_name
        'R'
        """
        return cls(schema, schemas_dir=schemas_dir, validate=validate, **options)

    def register_writer_schema(self, schema: SchemaLike | AvroSchema) -> int:
        """Accept data written with ``schema`` (same record name); return its fingerprint.

        >>> v2 = {"type": "record", "name": "R", "fields": [
        ...     {"name": "x", "type": "int"}, {"name": "y", "type": "int", "default": 0}]}
        >>> v1 = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "int"}]}
        >>> reader = AvroCodec.from_schema(v2)
        >>> _ = reader.register_writer_schema(v1)
        >>> reader.decode(AvroCodec.from_schema(v1).encode({"x": 1}))
        {'x': 1, 'y': 0}
        """
        parsed = schema if isinstance(schema, AvroSchema) else parse_avro_schema(schema)
        if parsed.fullname != self.record_name:
            raise SchemaError(
                f"{parsed.source}: writer schema is record {parsed.fullname}, "
                f"not {self.record_name}"
            )
        self._register(parsed)
        return parsed.fingerprint

    def _register(self, schema: AvroSchema) -> None:
        self._writers.setdefault(schema.fingerprint_bytes, schema)

    # -- introspection ------------------------------------------------------------------

    @property
    def schema(self) -> dict[str, Any]:
        """The reader schema as parsed by fastavro (do not mutate)."""
        return self._schema.parsed

    @property
    def avro_schema(self) -> AvroSchema:
        """The reader schema with its source, canonical form and fingerprint.

        >>> AvroCodec.from_file("schemas/order_event.avsc").avro_schema.source
        'schemas/order_event.avsc'
        """
        return self._schema

    @property
    def fingerprint(self) -> int:
        """CRC-64-AVRO fingerprint of the reader schema, as an unsigned int."""
        return self._schema.fingerprint

    @property
    def header(self) -> bytes:
        """The 10 bytes every value this codec encodes starts with."""
        return self._header

    @property
    def known_fingerprints(self) -> list[int]:
        """Fingerprints of every writer schema this codec can decode."""
        return [s.fingerprint for s in self._writers.values()]

    # -- Codec --------------------------------------------------------------------------

    def encode(self, value: Any) -> bytes:
        """Encode a record dict; a value that does not fit raises ``ValidationError``."""
        if self._validate:
            self._schema.converter.check(value)
        buf = io.BytesIO()
        buf.write(self._frame())
        try:
            schemaless_writer(buf, self._schema.parsed, value)
            return buf.getvalue()
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
        # Outside the except block so fastavro's exception is not chained to ours:
        # name the field if our own walker can find it, else report fastavro's reason.
        self._schema.converter.check(value)
        raise ValidationError("", f"cannot encode as {self.record_name}: {failure}")

    def decode(self, data: bytes) -> Any:
        """Decode one single-object encoded record into the reader schema's shape."""
        writer, start = self._writer_of(data)
        return self._read(data, start, writer)

    # -- framing (overridden by other wire formats) -------------------------------------

    def _frame(self) -> bytes:
        """The bytes written before each record body."""
        return self._header

    def _writer_of(self, data: bytes) -> tuple[AvroSchema, int]:
        """The writer schema of ``data`` and the offset where its body starts."""
        if data[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError(
                "not Avro single-object encoding: expected marker c3 01, "
                f"got {bytes(data[:2]).hex(' ') or 'empty input'}"
            )
        if len(data) < _HEADER_LEN:
            raise DecodeError(
                f"truncated Avro header: {len(data)} bytes, need at least {_HEADER_LEN}"
            )
        fp_bytes = bytes(data[2:_HEADER_LEN])
        writer = self._writers.get(fp_bytes)
        if writer is None:
            known = ", ".join(f"0x{fp:016x}" for fp in self.known_fingerprints)
            raise DecodeError(
                f"unknown schema fingerprint 0x{int.from_bytes(fp_bytes, 'little'):016x} "
                f"for {self.record_name} (known: {known}); add the writer's .avsc to the "
                "schemas folder"
            )
        return writer, _HEADER_LEN

    def _read(self, data: bytes, start: int, writer: AvroSchema) -> Any:
        """Read the body of ``data`` from ``start``, resolving ``writer`` into the reader."""
        buf = io.BytesIO(data)
        buf.seek(start)
        reader = None if writer is self._schema else self._schema.parsed
        try:
            value = schemaless_reader(buf, writer.parsed, reader)
        except Exception as exc:
            raise DecodeError(
                f"cannot decode {self.record_name} written with schema "
                f"0x{writer.fingerprint:016x}, data truncated or corrupt: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if buf.tell() != len(data):
            raise DecodeError(
                f"{len(data) - buf.tell()} trailing bytes after the {self.record_name} record"
            )
        return value

    def from_json(self, obj: Any) -> Any:
        """Convert a JSON object into a record dict ready for :meth:`encode`.

        Decimals come from strings or numbers (``Decimal(str(x))``; digits past
        the scale must be zeros), timestamps from epoch milliseconds or ISO-8601
        text (no offset means UTC), bytes from base64; missing fields take their
        defaults. Errors raise ``ValidationError`` naming the field path.

        >>> codec = AvroCodec.from_schema({"type": "record", "name": "R", "fields": [
        ...     {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ...     {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}]})
        >>> codec.from_json({"at": "2024-05-01T12:00:00Z"})
        {'at': datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc), 'tags': []}
        >>> codec.from_json({"at": 0, "tags": ["a", 7]})
        Traceback (most recent call last):
        ...
        streamflow.codecs.errors.ValidationError: tags[1]: expected a string, got 7 (int)
        """
        return self._schema.converter.from_json(obj)


def avro(
    name: str,
    schemas_dir: str | os.PathLike[str] | None = None,
    *,
    app_file: str | os.PathLike[str] | None = None,
    validate: bool = True,
    registry: str | None = None,
) -> AvroCodec:
    """Load ``<schemas_dir>/<name>.avsc`` into an :class:`AvroCodec`.

    ``schemas_dir`` defaults to ``$STREAMFLOW_SCHEMAS_DIR``, else ``./schemas``,
    else the ``schemas`` folder next to ``app_file``; see
    :func:`~streamflow.codecs.avro_schema.find_schema_file`. Every other
    ``.avsc`` in that folder defining the same record is registered as a
    known writer version.

    With a Schema Registry URL (``registry``, else ``$STREAMFLOW_SCHEMA_REGISTRY_URL``),
    the codec is a :class:`~streamflow.codecs.avro_registry.SchemaRegistryAvroCodec`:
    it writes the registry's wire format and still reads single-object encoded records.

    >>> codec = avro("order_event", schemas_dir="schemas")  # run from the repo root
    >>> codec.record_name
    'streamflow.examples.OrderEvent'
    """
    path = find_schema_file(name, schemas_dir, app_file)
    registry = registry or os.environ.get(REGISTRY_URL_ENV) or None
    if registry is None:
        return AvroCodec.from_file(path, validate=validate)
    # Imported here so that the registry client is only needed by apps that use one.
    from .avro_registry import SchemaRegistryAvroCodec

    return SchemaRegistryAvroCodec.from_file(path, validate=validate, registry=registry)
