"""Can a reader schema read what a writer schema wrote? (Avro schema resolution rules.)"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import avro.schema as _s
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from .avro_schema import AvroSchema, load_schema_file
from .errors import SchemaError

__all__ = ["check_compatibility"]

SchemaSource = Mapping[str, Any] | str | os.PathLike[str] | AvroSchema


def check_compatibility(reader_schema: SchemaSource, writer_schema: SchemaSource) -> list[str]:
    """List why data written with ``writer_schema`` cannot be read with ``reader_schema``.

    An empty list means compatible. Each schema may be a dict, JSON text, a
    path to an ``.avsc`` file (``pathlib.Path``) or an ``AvroSchema``. Records
    are compared field by field (so problems name the field); everything else
    is judged by the reference ``avro`` package's
    ``ReaderWriterCompatibilityChecker``. On top of it, decimal fields must keep
    their precision and scale, which that checker ignores but which would
    silently change the values read.

    >>> v1 = {"type": "record", "name": "Order", "fields": [
    ...     {"name": "id", "type": "string"}]}
    >>> v2 = {"type": "record", "name": "Order", "fields": [
    ...     {"name": "id", "type": "string"},
    ...     {"name": "currency", "type": "string", "default": "USD"}]}
    >>> check_compatibility(v2, v1)
    []
    >>> v3 = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}
    >>> check_compatibility(v3, v1)
    ['id: type mismatch: reader type: long not compatible with writer type: string']
    """
    reader = _to_avro(reader_schema, "reader")
    writer = _to_avro(writer_schema, "writer")
    problems: list[str] = []
    _compare(reader, writer, "", problems, ReaderWriterCompatibilityChecker(), set())
    return problems


def _to_avro(schema: SchemaSource, role: str) -> _s.Schema:
    source = f"<{role} schema>"
    if isinstance(schema, AvroSchema):
        raw: Any = schema.raw
        source = schema.source
    elif isinstance(schema, os.PathLike):
        raw = load_schema_file(schema)
        source = str(Path(schema))
    elif isinstance(schema, str):
        try:
            raw = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{source}: invalid JSON: {exc}") from exc
    else:
        raw = {k: v for k, v in schema.items() if not k.startswith("__")}  # fastavro-parsed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _s.parse(json.dumps(raw))
    except Exception as exc:
        raise SchemaError(f"{source}: {exc}") from exc


def _compare(
    reader: _s.Schema,
    writer: _s.Schema,
    path: str,
    problems: list[str],
    checker: ReaderWriterCompatibilityChecker,
    seen: set[tuple[int, int]],
) -> None:
    where = path or "<root>"
    if isinstance(reader, _s.RecordSchema) and isinstance(writer, _s.RecordSchema):
        if (id(reader), id(writer)) in seen:  # recursive types
            return
        seen.add((id(reader), id(writer)))
        aliases = reader.props.get("aliases") or []
        if writer.fullname != reader.fullname and not {writer.name, writer.fullname} & set(aliases):
            problems.append(
                f"{where}: record name {writer.fullname!r} (writer) does not match "
                f"{reader.fullname!r} (reader)"
            )
            return
        by_name = {f.name: f for f in writer.fields}
        for field in reader.fields:
            names = [field.name, *(field.props.get("aliases") or [])]
            written = next((by_name[n] for n in names if n in by_name), None)
            field_path = f"{path}.{field.name}" if path else field.name
            if written is None:
                if not field.has_default:
                    problems.append(
                        f"{field_path}: field missing from the writer schema "
                        "and has no default in the reader schema"
                    )
                continue
            _compare(field.type, written.type, field_path, problems, checker, seen)
        return
    if isinstance(reader, _s.ArraySchema) and isinstance(writer, _s.ArraySchema):
        _compare(reader.items, writer.items, f"{path}[]", problems, checker, seen)
        return
    if isinstance(reader, _s.MapSchema) and isinstance(writer, _s.MapSchema):
        _compare(reader.values, writer.values, f"{path}{{}}", problems, checker, seen)
        return
    if isinstance(reader, _s.EnumSchema) and isinstance(writer, _s.EnumSchema):
        missing = [s for s in writer.symbols if s not in reader.symbols]
        if missing and getattr(reader, "default", None) is None:
            problems.append(
                f"{where}: enum {reader.fullname} lacks symbol(s) {', '.join(missing)} "
                "that the writer can produce (and has no default symbol)"
            )
        return
    if isinstance(reader, _s.DecimalLogicalSchema) and isinstance(writer, _s.DecimalLogicalSchema):
        r = (reader.get_prop("precision"), reader.get_prop("scale") or 0)
        w = (writer.get_prop("precision"), writer.get_prop("scale") or 0)
        if r != w:
            problems.append(
                f"{where}: decimal({w[0]},{w[1]}) written but decimal({r[0]},{r[1]}) read; "
                "precision and scale must match or values change"
            )
            return
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.incompatible:
        kinds = ", ".join(sorted({k.value.replace("_", " ") for k in result.incompatibilities}))
        problems.append(f"{where}: {kinds}: {'; '.join(sorted(result.messages))}")
