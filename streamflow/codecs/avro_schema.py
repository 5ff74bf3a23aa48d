"""Loading Avro schemas: ``.avsc`` files, fingerprints, versions, the schemas folder."""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import avro.schema as _avro_schema
import fastavro
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from .avro_values import AvroValueConverter
from .errors import SchemaError

__all__ = [
    "SCHEMAS_DIR_ENV",
    "AvroSchema",
    "find_schema_file",
    "find_schema_versions",
    "load_schema_file",
    "parse_avro_schema",
]

log = logging.getLogger(__name__)

#: Environment variable naming the folder that holds ``<name>.avsc`` files.
SCHEMAS_DIR_ENV = "STREAMFLOW_SCHEMAS_DIR"

INLINE_SOURCE = "<inline schema>"


@dataclass(frozen=True)
class AvroSchema:
    """A validated Avro record schema and everything derived from it once.

    ``fingerprint`` is the CRC-64-AVRO (Rabin) fingerprint of the Parsing
    Canonical Form as an unsigned int; ``fingerprint_bytes`` is the same value
    as the 8 little-endian bytes that single-object encoding puts on the wire.

    >>> s = parse_avro_schema({"type": "record", "name": "foo",
    ...                        "fields": [{"name": "f1", "type": "boolean"}]})
    >>> s.canonical_form
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}'
    >>> s.fingerprint == 7843277075252814651  # Avro spec test vector
    True
    """

    raw: dict[str, Any] = field(repr=False)
    parsed: dict[str, Any] = field(repr=False)
    canonical_form: str = field(repr=False)
    fingerprint: int
    fingerprint_bytes: bytes = field(repr=False)
    fullname: str
    source: str
    converter: AvroValueConverter = field(repr=False, compare=False)


def _raw_fullname(raw: Any) -> str | None:
    """Full name of a named schema as written in JSON, or None if it has none."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        return None
    name = raw["name"]
    namespace = raw.get("namespace")
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def load_schema_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an ``.avsc`` file as JSON; any problem raises ``SchemaError`` naming the file.

    >>> load_schema_file("/nonexistent/x.avsc")
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.SchemaError: /nonexistent/x.avsc: cannot read schema file: ...
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read schema file: {exc}") from exc
    return _loads(text, str(path))


def _loads(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{source}: invalid JSON: {exc}") from exc


def parse_avro_schema(schema: Mapping[str, Any] | str, source: str = INLINE_SOURCE) -> AvroSchema:
    """Validate a record schema (dict or JSON text) and compute its fingerprint.

    The schema is checked with the reference ``avro`` parser (strict about
    names, types and duplicates) and parsed with fastavro for encoding; decimal
    parameters and field defaults are checked too. Any problem raises
    ``SchemaError`` whose message starts with ``source``.

    >>> parse_avro_schema('{"type": "record", "name": "R", "fields": '
    ...                   '[{"name": "a", "type": "strng"}]}', source="r.avsc")
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.SchemaError: r.avsc: Type property "strng" not a valid Avro \
schema: Could not make an Avro Schema object from strng
    """
    raw = _loads(schema, source) if isinstance(schema, str) else copy.deepcopy(dict(schema))
    if not isinstance(raw, dict) or raw.get("type") not in ("record", "error"):
        got = raw.get("type") if isinstance(raw, dict) else type(raw).__name__
        raise SchemaError(
            f'{source}: expected an Avro record schema (an object with "type": "record"), '
            f"got {got!r}"
        )
    # fastavro-parsed dicts carry private keys the reference parser rejects.
    raw = {k: v for k, v in raw.items() if not k.startswith("__fastavro")}
    raw.pop("__named_schemas", None)
    try:
        with warnings.catch_warnings():
            # Invalid logical types only warn there; decimals are checked strictly below.
            warnings.simplefilter("ignore")
            _avro_schema.parse(json.dumps(raw))
    except Exception as exc:
        raise SchemaError(f"{source}: {exc}") from exc
    try:
        parsed = fastavro.parse_schema(copy.deepcopy(raw))
    except Exception as exc:
        raise SchemaError(f"{source}: {type(exc).__name__}: {exc}") from exc
    try:
        converter = AvroValueConverter(parsed)
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from exc
    canonical = to_parsing_canonical_form(parsed)
    # fastavro returns the hex of the fingerprint's little-endian bytes (the
    # order single-object encoding uses); "null" -> 8a8f25cce724dd63.
    fp_bytes = bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO"))
    return AvroSchema(
        raw=raw,
        parsed=parsed,
        canonical_form=canonical,
        fingerprint=int.from_bytes(fp_bytes, "little"),
        fingerprint_bytes=fp_bytes,
        fullname=parsed["name"],
        source=source,
        converter=converter,
    )


def find_schema_versions(directory: str | os.PathLike[str], fullname: str) -> list[AvroSchema]:
    """Every ``*.avsc`` in ``directory`` whose record full name is ``fullname``.

    Files are read in name order. A file that is not valid JSON, or that
    defines another type, is skipped (a warning is logged for invalid JSON);
    a file that does define ``fullname`` but is otherwise broken raises
    ``SchemaError``.

    >>> find_schema_versions("/nonexistent", "ns.Rec")
    []
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    versions = []
    for path in sorted(directory.glob("*.avsc")):
        try:
            raw = load_schema_file(path)
        except SchemaError as exc:
            log.warning("ignoring unreadable schema file: %s", exc)
            continue
        if _raw_fullname(raw) == fullname:
            versions.append(parse_avro_schema(raw, source=str(path)))
    return versions


def find_schema_file(
    name: str,
    schemas_dir: str | os.PathLike[str] | None = None,
    app_file: str | os.PathLike[str] | None = None,
) -> Path:
    """Locate ``<name>.avsc``.

    Search order: ``schemas_dir`` if given (only there); else the folder in
    ``$STREAMFLOW_SCHEMAS_DIR`` if set (only there); else ``./schemas``, then
    the ``schemas`` folder next to ``app_file`` (pass ``__file__`` of the app).
    Not found raises ``SchemaError`` listing the places searched.

    >>> find_schema_file("order_event", schemas_dir="/nonexistent")
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.SchemaError: schema 'order_event' not found: no order_event.avsc \
in /nonexistent
    """
    if schemas_dir is not None:
        candidates = [Path(schemas_dir)]
    elif os.environ.get(SCHEMAS_DIR_ENV):
        candidates = [Path(os.environ[SCHEMAS_DIR_ENV])]
    else:
        candidates = [Path("schemas")]
        if app_file is not None:
            candidates.append(Path(app_file).resolve().parent / "schemas")
    for directory in candidates:
        path = directory / f"{name}.avsc"
        if path.is_file():
            return path
    raise SchemaError(
        f"schema {name!r} not found: no {name}.avsc in " + ", ".join(str(d) for d in candidates)
    )
