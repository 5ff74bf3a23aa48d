"""Primitive codecs, JsonCodec, to_json helpers, resolve_codec and the error types."""

from __future__ import annotations

import base64
import datetime as dt
import pickle
import struct
import uuid
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from streamflow.codecs import (
    AvroCodec,
    BytesCodec,
    Codec,
    CodecError,
    DecimalCodec,
    DecodeError,
    IntCodec,
    JsonCodec,
    SchemaError,
    StrCodec,
    ValidationError,
    resolve_codec,
    to_jsonable,
)

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


# -- StrCodec -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "plain", "naïve café", "emoji 🚀", "zero\x00byte"])
def test_str_round_trip(text: str) -> None:
    codec = StrCodec()
    data = codec.encode(text)
    assert data == text.encode("utf-8")
    assert codec.decode(data) == text


def test_str_invalid_utf8_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="invalid UTF-8 at byte 1"):
        StrCodec().decode(b"a\xff")


@pytest.mark.parametrize("value", [b"bytes", 1, None])
def test_str_encode_rejects_non_str(value: object) -> None:
    with pytest.raises(ValidationError, match="expected str"):
        StrCodec().encode(value)


def test_str_encode_rejects_lone_surrogate() -> None:
    with pytest.raises(ValidationError, match="UTF-8"):
        StrCodec().encode("\ud800")


def test_str_from_json_rejects_number() -> None:
    assert StrCodec().from_json("x") == "x"
    with pytest.raises(ValidationError):
        StrCodec().from_json(5)


# -- BytesCodec ---------------------------------------------------------------------------


def test_bytes_identity_and_bytes_like() -> None:
    codec = BytesCodec()
    raw = bytes(range(256))
    assert codec.encode(raw) is raw
    assert codec.encode(bytearray(raw)) == raw
    assert codec.encode(memoryview(raw)) == raw
    assert codec.decode(raw) == raw
    with pytest.raises(ValidationError, match="expected bytes"):
        codec.encode("text")


def test_bytes_json_is_base64() -> None:
    codec = BytesCodec()
    assert codec.to_json(b"\x00\xffhi") == base64.b64encode(b"\x00\xffhi").decode()
    assert codec.from_json(codec.to_json(b"\x00\xffhi")) == b"\x00\xffhi"
    with pytest.raises(ValidationError, match="base64"):
        codec.from_json("not base64!")


# -- IntCodec -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, -1, 42, 2**40, 2**63 - 1, -(2**63)])
def test_int_round_trip_matches_kafka_long_serializer(value: int) -> None:
    codec = IntCodec()
    data = codec.encode(value)
    assert data == struct.pack(">q", value)  # Kafka LongSerializer: 8 bytes big-endian
    assert codec.decode(data) == value


def test_int_known_bytes() -> None:
    assert IntCodec().encode(1) == b"\x00" * 7 + b"\x01"
    assert IntCodec().encode(-1) == b"\xff" * 8


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, True, 1.0, "1", None])
def test_int_encode_rejects(value: object) -> None:
    with pytest.raises(ValidationError):
        IntCodec().encode(value)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\x00" * 9])
def test_int_decode_wrong_length(data: bytes) -> None:
    with pytest.raises(DecodeError, match=f"got {len(data)}"):
        IntCodec().decode(data)


def test_int_from_json() -> None:
    assert IntCodec().from_json(7) == 7
    for bad in (7.0, True, "7"):
        with pytest.raises(ValidationError):
            IntCodec().from_json(bad)


# -- DecimalCodec -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["1234.50", "0", "0.00", "-0.01", "12345678901234567890.123456789", "1E+3"]
)
def test_decimal_round_trip_keeps_scale(text: str) -> None:
    codec = DecimalCodec()
    value = Decimal(text)
    data = codec.encode(value)
    assert data == text.encode()
    decoded = codec.decode(data)
    assert decoded == value
    assert decoded.as_tuple() == value.as_tuple()  # same digits and exponent, not just equal


def test_decimal_encode_accepts_int_rejects_float_and_nan() -> None:
    codec = DecimalCodec()
    assert codec.encode(5) == b"5"
    with pytest.raises(ValidationError, match="expected Decimal"):
        codec.encode(0.1)
    with pytest.raises(ValidationError, match="finite"):
        codec.encode(Decimal("NaN"))


@pytest.mark.parametrize("data", [b"abc", b"", b" 1.5", b"NaN", b"Infinity", b"1.5\xff"])
def test_decimal_decode_rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        DecimalCodec().decode(data)


def test_decimal_from_json_never_uses_float_arithmetic() -> None:
    codec = DecimalCodec()
    assert codec.from_json(0.1) == Decimal("0.1")
    assert codec.from_json(0.1) != Decimal.from_float(0.1)  # the binary expansion
    assert codec.from_json("12.50").as_tuple().exponent == -2
    assert codec.to_json(Decimal("12.50")) == "12.50"
    for bad in (True, None, "abc", "NaN"):
        with pytest.raises(ValidationError):
            codec.from_json(bad)


# -- JsonCodec ----------------------------------------------------------------------------


def test_json_decimal_encodes_as_string_keeping_scale() -> None:
    codec = JsonCodec()
    data = codec.encode({"amount": Decimal("12.50"), "n": [Decimal("0.1"), 2]})
    assert data == b'{"amount":"12.50","n":["0.1",2]}'
    assert orjson.loads(data)["amount"] == "12.50"


def test_json_decode_gives_plain_types() -> None:
    value = JsonCodec().decode(b'{"a":1,"b":[true,null,1.5],"c":"x"}')
    assert value == {"a": 1, "b": [True, None, 1.5], "c": "x"}
    assert type(value["b"][2]) is float


def test_json_other_types() -> None:
    codec = JsonCodec()
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert codec.decode(codec.encode({"t": when})) == {"t": "2024-05-01T12:00:00+00:00"}
    assert codec.decode(codec.encode({"b": b"\x00\x01"})) == {"b": "AAE="}


def test_json_errors() -> None:
    codec = JsonCodec()
    with pytest.raises(DecodeError, match="invalid JSON"):
        codec.decode(b'{"a":')
    with pytest.raises(DecodeError):
        codec.decode(b'"\xff"')  # invalid UTF-8 inside JSON
    with pytest.raises(ValidationError, match="not JSON serializable"):
        codec.encode({"x": object()})
    with pytest.raises(ValidationError):
        codec.encode({"x": Decimal("NaN")})


# -- to_jsonable --------------------------------------------------------------------------


def test_to_jsonable_nested() -> None:
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "amount": Decimal("12.50"),
        "at": dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 5, 1),
        "raw": b"\xff",
        "id": uid,
        "items": ({"p": Decimal("1.0")},),
        "n": None,
    }
    out = to_jsonable(value)
    assert out == {
        "amount": "12.50",
        "at": "2024-05-01T12:00:00.250000+00:00",
        "day": "2024-05-01",
        "raw": "/w==",
        "id": "12345678-1234-5678-1234-567812345678",
        "items": [{"p": "1.0"}],
        "n": None,
    }
    assert orjson.loads(orjson.dumps(out)) == out


# -- resolve_codec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("str", StrCodec),
        ("bytes", BytesCodec),
        ("json", JsonCodec),
        ("int", IntCodec),
        ("decimal", DecimalCodec),
    ],
)
def test_resolve_shorthands(spec: str, cls: type[Codec]) -> None:
    codec = resolve_codec(spec)
    assert type(codec) is cls
    assert codec.name == spec


def test_resolve_passes_codec_instances_through() -> None:
    codec = IntCodec()
    assert resolve_codec(codec) is codec


def test_resolve_avro_shorthand() -> None:
    codec = resolve_codec("avro:order_event", schemas_dir=SCHEMAS_DIR)
    assert isinstance(codec, AvroCodec)
    assert codec.record_name == "streamflow.examples.OrderEvent"


def test_resolve_avro_missing_schema() -> None:
    with pytest.raises(SchemaError, match=r"no_such_schema\.avsc"):
        resolve_codec("avro:no_such_schema", schemas_dir=SCHEMAS_DIR)


@pytest.mark.parametrize("spec", ["yaml", "avro:", "STR", "", 42])
def test_resolve_unknown_lists_valid_shorthands(spec: object) -> None:
    with pytest.raises(ValueError, match="unknown codec") as info:
        resolve_codec(spec)  # type: ignore[arg-type]
    for name in ("str", "bytes", "json", "int", "decimal", "avro:<name>"):
        assert name in str(info.value)


# -- errors -------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    for cls in (DecodeError, SchemaError, ValidationError):
        assert issubclass(cls, CodecError)
    assert not issubclass(ValidationError, ValueError)


def test_validation_error_fields_and_pickle() -> None:
    err = ValidationError("items[2].price", "expected a decimal, got 'x'")
    assert err.field == "items[2].price"
    assert err.reason == "expected a decimal, got 'x'"
    assert str(err) == "items[2].price: expected a decimal, got 'x'"
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.field, clone.reason, str(clone)) == (err.field, err.reason, str(err))
