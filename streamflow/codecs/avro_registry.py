"""Avro records in the Schema Registry wire format (Confluent's framing).

Wire format::

    00 | 4-byte big-endian schema id | Avro binary body

The same bytes as Confluent's ``AvroSerializer`` writes with its default settings,
so streamflow apps and other registry clients can share topics. Encoding registers
the reader schema under the codec's subject once (TopicNameStrategy:
``<topic>-value`` / ``<topic>-key``; a :class:`~streamflow.topics.Topic` binds it)
and caches the id. Decoding fetches each writer schema by id once and resolves it
into the reader schema. Single-object encoded records (``C3 01``) still decode from
the versions under the schemas folder, so a topic can switch formats without
losing older records.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from functools import cache
from typing import Any

from .avro import REGISTRY_URL_ENV, SINGLE_OBJECT_MARKER, AvroCodec, SchemaLike
from .avro_schema import AvroSchema, parse_avro_schema
from .errors import DecodeError, RegistryError, SchemaError

try:
    # Recorded, not shown: some versions of the client's dependencies warn about their
    # own imports (and force those warnings on with a filter of their own).
    with warnings.catch_warnings(record=True):
        from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
        from confluent_kafka.schema_registry.error import SchemaRegistryError
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the Schema Registry wire format needs confluent-kafka's registry client: "
        "pip install 'streamflow[registry]'"
    ) from exc

__all__ = ["MAGIC_BYTE", "SchemaRegistryAvroCodec", "registry_client"]

#: The byte that starts every record in the Schema Registry wire format.
MAGIC_BYTE = b"\x00"
_PREFIX_LEN = 5


@cache
def registry_client(url: str) -> SchemaRegistryClient:
    """One shared client per registry URL (the client caches ids and schemas).

    A bad URL raises ``SchemaError``; nothing is contacted until a schema is needed.

    >>> registry_client("http://127.0.0.1:8081") is registry_client("http://127.0.0.1:8081")
    True
    >>> registry_client("localhost:8081")
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.SchemaError: invalid Schema Registry URL 'localhost:8081': ...
    """
    try:
        return SchemaRegistryClient({"url": url})
    except ValueError as exc:
        raise SchemaError(f"invalid Schema Registry URL {url!r}: {exc}") from None


class SchemaRegistryAvroCodec(AvroCodec):
    """An :class:`AvroCodec` writing the Schema Registry wire format.

    ``registry`` is the registry URL (``$STREAMFLOW_SCHEMA_REGISTRY_URL`` when not
    given). ``subject`` fixes the subject; otherwise a topic binds it with
    :meth:`for_topic`, and a codec used outside any topic (a table's values in its
    changelog) registers under the record's full name (RecordNameStrategy).

    Registry failures raise :class:`~streamflow.codecs.errors.RegistryError`; a schema
    id the registry does not know, or one of another record, raises ``DecodeError``.

    >>> codec = SchemaRegistryAvroCodec.from_file(
    ...     "schemas/order_event.avsc", registry="http://127.0.0.1:8081")
    >>> codec.subject
    'streamflow.examples.OrderEvent'
    >>> codec.for_topic("order_events", is_key=False).subject
    'order_events-value'
    """

    def __init__(
        self,
        schema: SchemaLike | AvroSchema,
        *,
        registry: str | None = None,
        subject: str | None = None,
        **options: Any,
    ) -> None:
        """Build the codec; ``options`` are :class:`AvroCodec`'s (``schemas_dir``, ...)."""
        super().__init__(schema, **options)
        url = registry or os.environ.get(REGISTRY_URL_ENV)
        if not url:
            raise SchemaError(
                f"no Schema Registry URL: pass registry=... or set {REGISTRY_URL_ENV}"
            )
        self.registry_url: str = url
        self.name = f"avro-registry:{self.record_name}"
        self._client = registry_client(url)
        self._fixed_subject = subject is not None
        self._subject = subject or self.record_name
        self._prefix: bytes | None = None
        # Shared with the copies for_topic makes: a schema id means the same everywhere.
        self._by_id: dict[int, AvroSchema] = {}
        self._schema_text = json.dumps(self.avro_schema.raw)

    @property
    def subject(self) -> str:
        """The subject the reader schema is registered under when encoding."""
        return self._subject

    @property
    def schema_id(self) -> int:
        """The registry's id of the reader schema, registering it on first use."""
        return int.from_bytes(self._frame()[1:], "big")

    def for_topic(self, topic: str, *, is_key: bool) -> SchemaRegistryAvroCodec:
        """A copy registering under ``<topic>-key`` or ``<topic>-value``.

        A codec built with an explicit ``subject`` keeps it and returns itself.
        """
        if self._fixed_subject:
            return self
        bound = copy.copy(self)
        bound._subject = f"{topic}-{'key' if is_key else 'value'}"
        bound._prefix = None
        return bound

    def _frame(self) -> bytes:
        if self._prefix is None:
            try:
                schema_id = self._client.register_schema(
                    self._subject, Schema(self._schema_text, "AVRO")
                )
            except SchemaRegistryError as exc:
                raise RegistryError(
                    f"the Schema Registry at {self.registry_url} refused schema "
                    f"{self.record_name} ({self.avro_schema.source}) under subject "
                    f"{self._subject!r}: {exc.error_message} (HTTP {exc.http_status_code})"
                ) from None
            except Exception as exc:
                raise self._unreachable(exc) from None
            self._by_id.setdefault(schema_id, self.avro_schema)
            self._prefix = MAGIC_BYTE + schema_id.to_bytes(4, "big")
        return self._prefix

    def _writer_of(self, data: bytes) -> tuple[AvroSchema, int]:
        if data[:2] == SINGLE_OBJECT_MARKER:
            return super()._writer_of(data)
        if data[:1] != MAGIC_BYTE:
            raise DecodeError(
                "not the Schema Registry wire format (magic byte 00) nor Avro single-object "
                f"encoding (c3 01): got {bytes(data[:2]).hex(' ') or 'empty input'}"
            )
        if len(data) < _PREFIX_LEN:
            raise DecodeError(
                f"truncated Schema Registry header: {len(data)} bytes, need {_PREFIX_LEN}"
            )
        schema_id = int.from_bytes(data[1:_PREFIX_LEN], "big")
        writer = self._by_id.get(schema_id)
        if writer is None:
            writer = self._by_id[schema_id] = self._fetch(schema_id)
        return writer, _PREFIX_LEN

    def _fetch(self, schema_id: int) -> AvroSchema:
        """The writer schema with ``schema_id``, or a known local version of the same form."""
        source = f"schema id {schema_id} at {self.registry_url}"
        try:
            registered = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise DecodeError(f"{source}: not found in the registry") from None
            raise RegistryError(
                f"{source}: the registry refused: {exc.error_message} (HTTP {exc.http_status_code})"
            ) from None
        except Exception as exc:
            raise self._unreachable(exc) from None
        if (registered.schema_type or "AVRO") != "AVRO":
            raise DecodeError(f"{source}: a {registered.schema_type} schema, not Avro")
        try:
            writer = parse_avro_schema(registered.schema_str, source=source)
        except SchemaError as exc:
            raise DecodeError(str(exc)) from None
        if writer.fullname != self.record_name:
            raise DecodeError(f"{source}: record {writer.fullname}, not {self.record_name}")
        # The same Parsing Canonical Form means the same bytes: reuse the known version,
        # which also skips schema resolution when it is the reader schema itself.
        return self._writers.get(writer.fingerprint_bytes, writer)

    def _unreachable(self, exc: Exception) -> RegistryError:
        return RegistryError(
            f"cannot reach the Schema Registry at {self.registry_url}: {type(exc).__name__}: {exc}"
        )
