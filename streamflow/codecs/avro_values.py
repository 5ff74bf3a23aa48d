"""Schema-driven checks and conversions of Avro values, with field paths in errors.

fastavro's own validation reports problems without saying *where* in a record
they are, so :class:`AvroValueConverter` walks the schema itself:

- :meth:`~AvroValueConverter.from_json` turns JSON-decoded data into the native
  values fastavro writes (``Decimal``, aware ``datetime``, ``bytes``, ...);
- :meth:`~AvroValueConverter.check` verifies a native value before encoding.

Both raise :class:`~streamflow.codecs.errors.ValidationError` whose ``field`` is
the dotted path of the bad value (``"items[2].price"``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as _dt
import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import SchemaError, ValidationError

__all__ = ["AvroValueConverter"]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_TS_UNITS = {"timestamp-millis": "milliseconds", "timestamp-micros": "microseconds"}
_TIME_UNITS = {"time-millis": "milliseconds", "time-micros": "microseconds"}

Schema = Any  # a fastavro-parsed schema node: str, list (union) or dict


class _Mismatch(Exception):
    """Internal: a value does not fit; ``path`` is filled while unwinding (innermost first)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int | _MapKey] = []


class _MapKey(str):
    """Marks a map key in a path, rendered as ``["key"]`` instead of ``.key``."""


def _join_path(reversed_segments: list[str | int | _MapKey]) -> str:
    out = ""
    for seg in reversed(reversed_segments):
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif isinstance(seg, _MapKey):
            out += f"[{json.dumps(str(seg))}]"
        else:
            out += f".{seg}" if out else seg
    return out


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return text if value is None else f"{text} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_label(schema: Schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " | ".join(_type_label(b) for b in schema)
    logical = schema.get("logicalType")
    if logical == "decimal":
        return f"decimal({schema.get('precision')},{schema.get('scale', 0)})"
    if logical:
        return str(logical)
    if schema["type"] in ("record", "error", "enum", "fixed"):
        return f"{schema['type']} {schema['name']}"
    if schema["type"] == "array":
        return f"array<{_type_label(schema['items'])}>"
    if schema["type"] == "map":
        return f"map<{_type_label(schema['values'])}>"
    return _type_label(schema["type"])


def _decimal_from_parts(
    value: Decimal, precision: int, scale: int, *, exact_scale: bool
) -> Decimal:
    """Return ``value`` at exactly ``scale`` decimal places, or raise ``_Mismatch``.

    With ``exact_scale`` (native values, as fastavro requires) the exponent must
    already be >= -scale; otherwise extra trailing zeros are dropped, but a
    non-zero digit past the scale is always an error. Pure integer arithmetic:
    the global decimal context's precision never rounds anything here.
    """
    label = f"decimal({precision},{scale})"
    if not value.is_finite():
        raise _Mismatch(f"expected a finite {label}, got {_show(value)}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coeff = int("".join(map(str, digits))) if digits else 0
    if -exponent > scale:
        drop = -exponent - scale
        quantum = Decimal(1).scaleb(-scale)
        hint = f"; round it first, e.g. value.quantize(Decimal('{quantum}'))"
        if exact_scale:
            raise _Mismatch(
                f"expected a {label} with at most {scale} decimal places, "
                f"got {str(value)!r} ({-exponent} decimal places){hint}"
            )
        # drop > len(digits) with a non-zero coefficient can never divide evenly.
        if coeff and drop > len(digits):
            rem = 1
        else:
            coeff, rem = divmod(coeff, 10**drop)
        if rem:
            raise _Mismatch(
                f"expected a {label} with at most {scale} decimal places, "
                f"got {str(value)!r} ({-exponent} decimal places)"
            )
    elif coeff:
        if len(digits) + exponent + scale > precision:
            raise _too_many_digits(value, precision, scale)
        coeff *= 10 ** (exponent + scale)
    if coeff >= 10**precision:
        raise _too_many_digits(value, precision, scale)
    return Decimal((sign, tuple(int(c) for c in str(coeff)), -scale))


def _too_many_digits(value: Any, precision: int, scale: int) -> _Mismatch:
    return _Mismatch(
        f"expected a decimal({precision},{scale}) of at most {precision} digits "
        f"({precision - scale} before the point), got {str(value)!r}"
    )


def _parse_iso_datetime(text: str) -> _dt.datetime:
    # Python < 3.11 fromisoformat() does not accept a "Z" suffix.
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    parsed = _dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.astimezone(_dt.timezone.utc)


class AvroValueConverter:
    """Validates and converts values for one fastavro-parsed schema.

    Building it also checks the schema's decimal parameters and field
    defaults, raising :class:`~streamflow.codecs.errors.SchemaError`.

    >>> from fastavro import parse_schema
    >>> schema = parse_schema({"type": "record", "name": "Item", "fields": [
    ...     {"name": "price", "type": {"type": "bytes", "logicalType": "decimal",
    ...                                "precision": 6, "scale": 2}},
    ...     {"name": "qty", "type": "int", "default": 1}]})
    >>> conv = AvroValueConverter(schema)
    >>> conv.from_json({"price": "9.5"})
    {'price': Decimal('9.50'), 'qty': 1}
    >>> conv.from_json({"price": "9.555"})
    Traceback (most recent call last):
    ...
    streamflow.codecs.errors.ValidationError: price: expected a decimal(6,2) with at most 2 \
decimal places, got '9.555' (3 decimal places)
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._named: dict[str, Any] = dict(schema.get("__named_schemas", {}))
        # (record fullname, field name) -> native default value
        self._defaults: dict[tuple[str, str], Any] = {}
        self._field_names: dict[str, frozenset[str]] = {}
        self._prepare(schema, set())

    # -- public -------------------------------------------------------------------------

    def from_json(self, obj: Any) -> Any:
        """Convert JSON-decoded ``obj`` to native values, filling field defaults."""
        try:
            return self._json(self.schema, obj)
        except _Mismatch as exc:
            raise ValidationError(_join_path(exc.path), exc.reason) from None

    def check(self, value: Any) -> None:
        """Raise ``ValidationError`` unless ``value`` can be encoded exactly."""
        try:
            self._check(self.schema, value)
        except _Mismatch as exc:
            raise ValidationError(_join_path(exc.path), exc.reason) from None

    # -- schema preparation -------------------------------------------------------------

    def _resolve(self, schema: Schema) -> Schema:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            try:
                return self._named[schema]
            except KeyError:
                raise SchemaError(f"unknown type {schema!r}") from None
        return schema

    def _prepare(self, schema: Schema, seen: set[str]) -> None:
        schema = self._resolve(schema)
        if isinstance(schema, str):
            return
        if isinstance(schema, list):
            for branch in schema:
                self._prepare(branch, seen)
            return
        kind = schema["type"]
        name = schema.get("name")
        if name is not None:
            if name in seen:
                return
            seen.add(name)
        if schema.get("logicalType") == "decimal" and kind in ("bytes", "fixed"):
            self._prepare_decimal(schema)
        if kind in ("record", "error"):
            self._field_names[name] = frozenset(f["name"] for f in schema["fields"])
            for field in schema["fields"]:
                try:
                    self._prepare(field["type"], seen)
                except SchemaError as exc:
                    raise SchemaError(f"field {name}.{field['name']}: {exc}") from None
                if "default" in field:
                    try:
                        native = self._default(field["type"], field["default"])
                    except _Mismatch as exc:
                        where = _join_path(exc.path)
                        raise SchemaError(
                            f"field {name}.{field['name']}: default {field['default']!r} "
                            f"does not match its type {_type_label(field['type'])}"
                            f"{' at ' + where if where else ''}: {exc.reason}"
                        ) from None
                    self._defaults[(name, field["name"])] = native
        elif kind == "array":
            self._prepare(schema["items"], seen)
        elif kind == "map":
            self._prepare(schema["values"], seen)
        elif kind not in _PRIMITIVES and kind not in ("enum", "fixed"):
            self._prepare(kind, seen)

    @staticmethod
    def _prepare_decimal(schema: dict[str, Any]) -> None:
        precision = schema.get("precision")
        scale = schema.get("scale", 0)
        where = f"decimal {schema.get('name', '')}".rstrip()
        if not _is_int(precision) or precision < 1:
            raise SchemaError(f"{where}: precision must be a positive integer, got {precision!r}")
        if not _is_int(scale) or not 0 <= scale <= precision:
            raise SchemaError(
                f"{where}: scale must be an integer between 0 and precision ({precision}), "
                f"got {scale!r}"
            )
        if schema["type"] == "fixed":
            max_digits = len(str(2 ** (8 * schema["size"] - 1) - 1)) - 1
            if precision > max_digits:
                raise SchemaError(
                    f"{where}: precision {precision} does not fit in fixed size "
                    f"{schema['size']} (at most {max_digits} digits)"
                )

    # -- JSON -> native -----------------------------------------------------------------

    def _json(self, schema: Schema, value: Any) -> Any:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _primitive_json(schema, value)
            schema = self._named[schema]
        if isinstance(schema, list):
            return self._union(schema, value, self._json)
        kind = schema["type"]
        if kind in ("record", "error"):
            return self._record(schema, value, self._json, fill_defaults=True)
        if kind == "enum":
            return _enum(schema, value)
        if kind == "array":
            return self._array(schema, value, self._json)
        if kind == "map":
            return self._map(schema, value, self._json)
        logical = schema.get("logicalType")
        if logical == "decimal" and kind in ("bytes", "fixed"):
            return _decimal_json(schema, value)
        if kind == "fixed":
            data = _primitive_json("bytes", value)
            _check_fixed_size(schema, data)
            return data
        if logical is not None:
            converter = _LOGICAL_JSON.get((kind, logical))
            if converter is not None:
                return converter(value, logical)
        if kind in _PRIMITIVES:
            return _primitive_json(kind, value)
        return self._json(kind, value)

    # -- native checks ------------------------------------------------------------------

    def _check(self, schema: Schema, value: Any) -> Any:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _primitive_check(schema, value)
            schema = self._named[schema]
        if isinstance(schema, list):
            return self._union(schema, value, self._check)
        kind = schema["type"]
        if kind in ("record", "error"):
            return self._record(schema, value, self._check, fill_defaults=False)
        if kind == "enum":
            return _enum(schema, value)
        if kind == "array":
            return self._array(schema, value, self._check)
        if kind == "map":
            return self._map(schema, value, self._check)
        logical = schema.get("logicalType")
        if logical == "decimal" and kind in ("bytes", "fixed"):
            if not isinstance(value, Decimal):
                hint = "; floats are inexact, convert with Decimal(str(x))"
                raise _Mismatch(
                    f"expected a Decimal for {_type_label(schema)}, got {_show(value)}"
                    + (hint if isinstance(value, float) else "")
                )
            return _decimal_from_parts(
                value, schema["precision"], schema.get("scale", 0), exact_scale=True
            )
        if kind == "fixed":
            _primitive_check("bytes", value)
            _check_fixed_size(schema, value)
            return value
        if logical is not None:
            checker = _LOGICAL_CHECK.get((kind, logical))
            if checker is not None:
                return checker(value, logical)
        if kind in _PRIMITIVES:
            return _primitive_check(kind, value)
        return self._check(kind, value)

    # -- Avro JSON default value -> native ----------------------------------------------

    def _default(self, schema: Schema, value: Any) -> Any:
        """Convert a schema ``default`` (Avro's JSON encoding) to a native value."""
        schema = self._resolve(schema)
        if isinstance(schema, list):
            # The spec: a union's default corresponds to its first branch.
            return self._default(schema[0], value)
        if isinstance(schema, str):
            if schema == "bytes":
                return _latin1_bytes(value)
            return _primitive_json(schema, value)
        kind = schema["type"]
        if kind in ("record", "error"):
            if not isinstance(value, Mapping):
                raise _Mismatch(f"expected an object, got {_show(value)}")
            out = {}
            for field in schema["fields"]:
                fname = field["name"]
                try:
                    if fname in value:
                        out[fname] = self._default(field["type"], value[fname])
                    elif "default" in field:
                        out[fname] = self._default(field["type"], field["default"])
                    else:
                        raise _Mismatch("required field is missing")
                except _Mismatch as exc:
                    exc.path.append(fname)
                    raise
            return out
        if kind == "enum":
            return _enum(schema, value)
        if kind == "array":
            return self._array(schema, value, self._default)
        if kind == "map":
            return self._map(schema, value, self._default)
        logical = schema.get("logicalType")
        if kind in ("bytes", "fixed"):
            data = _latin1_bytes(value)
            if kind == "fixed":
                _check_fixed_size(schema, data)
            if logical == "decimal":
                unscaled = int.from_bytes(data, "big", signed=True)
                return Decimal(f"{unscaled}E-{schema.get('scale', 0)}")
            return data
        if logical is not None:
            converter = _LOGICAL_JSON.get((kind, logical))
            if converter is not None:
                return converter(value, logical)
        if kind in _PRIMITIVES:
            return _primitive_json(kind, value)
        return self._default(kind, value)

    # -- shared structural walkers ------------------------------------------------------

    def _record(
        self,
        schema: dict[str, Any],
        value: Any,
        walk: Callable[[Schema, Any], Any],
        *,
        fill_defaults: bool,
    ) -> Any:
        name = schema["name"]
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected an object for record {name}, got {_show(value)}")
        extra = value.keys() - self._field_names[name]
        if extra:
            unknown = sorted(map(str, extra))[0]
            exc = _Mismatch(
                f"unknown field {unknown!r} for record {name} "
                f"(known fields: {', '.join(f['name'] for f in schema['fields'])})"
            )
            exc.path.append(unknown)
            raise exc
        out: dict[str, Any] = {}
        for field in schema["fields"]:
            fname = field["name"]
            if fname in value:
                try:
                    out[fname] = walk(field["type"], value[fname])
                except _Mismatch as exc:
                    exc.path.append(fname)
                    raise
            elif (name, fname) in self._defaults:
                if fill_defaults:
                    out[fname] = copy.deepcopy(self._defaults[(name, fname)])
            else:
                exc = _Mismatch(
                    f"required field of record {name} is missing "
                    f"(expected {_type_label(field['type'])})"
                )
                exc.path.append(fname)
                raise exc
        return out

    def _array(self, schema: dict[str, Any], value: Any, walk: Callable[[Schema, Any], Any]) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(
                f"expected an array of {_type_label(schema['items'])}, got {_show(value)}"
            )
        items = schema["items"]
        out = []
        for index, item in enumerate(value):
            try:
                out.append(walk(items, item))
            except _Mismatch as exc:
                exc.path.append(index)
                raise
        return out

    def _map(self, schema: dict[str, Any], value: Any, walk: Callable[[Schema, Any], Any]) -> Any:
        if not isinstance(value, Mapping):
            raise _Mismatch(
                f"expected a map of {_type_label(schema['values'])}, got {_show(value)}"
            )
        values = schema["values"]
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Mismatch(f"map keys must be strings, got key {_show(key)}")
            try:
                out[key] = walk(values, item)
            except _Mismatch as exc:
                exc.path.append(_MapKey(key))
                raise
        return out

    def _union(self, branches: list[Any], value: Any, walk: Callable[[Schema, Any], Any]) -> Any:
        if value is None and "null" in branches:
            return None
        failures: list[_Mismatch] = []
        for branch in branches:
            if branch == "null":
                continue
            try:
                return walk(branch, value)
            except _Mismatch as exc:
                failures.append(exc)
        non_null = [b for b in branches if b != "null"]
        if value is not None:
            # The most specific message wins: the only possible branch, or the
            # only branch whose shape matched but a nested value did not.
            if len(failures) == 1:
                raise failures[0]
            nested = [f for f in failures if f.path]
            if len(nested) == 1:
                raise nested[0]
        options = " or ".join(_type_label(b) for b in non_null)
        nullable = ", or null" if "null" in branches else ""
        raise _Mismatch(f"expected {options}{nullable}, got {_show(value)}")


# -- leaf conversions (module level: no per-schema state) ---------------------------------


def _primitive_json(kind: str, value: Any) -> Any:
    if kind == "string":
        if isinstance(value, str):
            return value
        raise _Mismatch(f"expected a string, got {_show(value)}")
    if kind in ("int", "long"):
        low, high = _INT32 if kind == "int" else _INT64
        if not _is_int(value):
            raise _Mismatch(f"expected an integer ({kind}), got {_show(value)}")
        if not low <= value <= high:
            raise _Mismatch(f"expected an {kind} between {low} and {high}, got {value}")
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch(f"expected a number ({kind}), got {_show(value)}")
        return float(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise _Mismatch(f"expected true or false, got {_show(value)}")
    if kind == "null":
        if value is None:
            return None
        raise _Mismatch(f"expected null, got {_show(value)}")
    if kind == "bytes":
        if not isinstance(value, str):
            raise _Mismatch(f"expected base64 text (bytes), got {_show(value)}")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _Mismatch(f"expected base64 text (bytes), got {_show(value)}") from None
    raise AssertionError(f"not a primitive Avro type: {kind}")


def _primitive_check(kind: str, value: Any) -> Any:
    if kind == "bytes":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return value
        raise _Mismatch(f"expected bytes, got {_show(value)}")
    if (
        kind in ("float", "double")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        return value
    return _primitive_json(kind, value)


def _latin1_bytes(value: Any) -> bytes:
    # Avro writes bytes/fixed defaults as strings of code points 0-255.
    if not isinstance(value, str):
        raise _Mismatch(f"expected a string of code points 0-255, got {_show(value)}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise _Mismatch(f"expected a string of code points 0-255, got {_show(value)}") from None


def _check_fixed_size(schema: dict[str, Any], data: Any) -> None:
    if len(data) != schema["size"]:
        raise _Mismatch(
            f"expected exactly {schema['size']} bytes for fixed {schema['name']}, got {len(data)}"
        )


def _enum(schema: dict[str, Any], value: Any) -> str:
    symbols = schema["symbols"]
    if isinstance(value, str) and value in symbols:
        return value
    raise _Mismatch(
        f"expected one of {', '.join(symbols)} (enum {schema['name']}), got {_show(value)}"
    )


def _decimal_json(schema: dict[str, Any], value: Any) -> Decimal:
    precision, scale = schema["precision"], schema.get("scale", 0)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise _Mismatch(
            f"expected a decimal({precision},{scale}) as a string or number, got {_show(value)}"
        )
    try:
        # str(float) is the shortest repr that round-trips, e.g. 0.1 -> "0.1":
        # no binary floating-point digits leak into the Decimal.
        number = Decimal(str(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise _Mismatch(f"expected a decimal({precision},{scale}), got {_show(value)}") from None
    return _decimal_from_parts(number, precision, scale, exact_scale=False)


def _timestamp_json(value: Any, logical: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return _timestamp_check(value, logical).astimezone(_dt.timezone.utc)
    if _is_int(value):
        try:
            return _EPOCH + _dt.timedelta(**{_TS_UNITS[logical]: value})
        except OverflowError:
            raise _Mismatch(f"timestamp {value} is out of range") from None
    if isinstance(value, str):
        try:
            return _parse_iso_datetime(value)
        except ValueError:
            pass
    unit = "milliseconds" if logical == "timestamp-millis" else "microseconds"
    raise _Mismatch(
        f"expected epoch {unit} (integer) or an ISO-8601 string like "
        f"'2024-05-01T12:00:00Z', got {_show(value)}"
    )


def _timestamp_check(value: Any, logical: str) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Mismatch(
                f"expected a timezone-aware datetime ({logical}), got naive {value!r}; "
                "use e.g. datetime.now(timezone.utc)"
            )
        return value
    if _is_int(value):
        return _primitive_json("long", value)
    raise _Mismatch(f"expected a timezone-aware datetime ({logical}), got {_show(value)}")


def _date_json(value: Any, logical: str) -> _dt.date:
    if _is_int(value):
        try:
            return _EPOCH_DATE + _dt.timedelta(days=value)
        except OverflowError:
            raise _Mismatch(f"date {value} is out of range") from None
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _Mismatch(
        f"expected days since epoch or an ISO date like '2024-05-01', got {_show(value)}"
    )


def _date_check(value: Any, logical: str) -> Any:
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value
    if _is_int(value):
        return _primitive_json("int", value)
    raise _Mismatch(f"expected a date, got {_show(value)}")


def _time_json(value: Any, logical: str) -> _dt.time:
    if _is_int(value) and value >= 0:
        moment = _dt.datetime.min + _dt.timedelta(**{_TIME_UNITS[logical]: value})
        if moment.date() == _dt.datetime.min.date():
            return moment.time()
    if isinstance(value, str):
        try:
            return _dt.time.fromisoformat(value)
        except ValueError:
            pass
    raise _Mismatch(f"expected a time of day like '12:30:00' ({logical}), got {_show(value)}")


def _time_check(value: Any, logical: str) -> Any:
    if isinstance(value, _dt.time):
        return value
    if _is_int(value):
        return _primitive_json("int" if logical == "time-millis" else "long", value)
    raise _Mismatch(f"expected a datetime.time ({logical}), got {_show(value)}")


def _uuid_json(value: Any, logical: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _Mismatch(f"expected a UUID string, got {_show(value)}")


_Leaf = Callable[[Any, str], Any]

_LOGICAL_JSON: dict[tuple[str, str], _Leaf] = {
    ("long", "timestamp-millis"): _timestamp_json,
    ("long", "timestamp-micros"): _timestamp_json,
    ("int", "date"): _date_json,
    ("int", "time-millis"): _time_json,
    ("long", "time-micros"): _time_json,
    ("string", "uuid"): _uuid_json,
}

_LOGICAL_CHECK: dict[tuple[str, str], _Leaf] = {
    ("long", "timestamp-millis"): _timestamp_check,
    ("long", "timestamp-micros"): _timestamp_check,
    ("int", "date"): _date_check,
    ("int", "time-millis"): _time_check,
    ("long", "time-micros"): _time_check,
    ("string", "uuid"): _uuid_json,
}
