"""AvroCodec: single-object wire format, decimals, evolution, errors, JSON conversion."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import logging
import random
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastavro import schemaless_reader

from streamflow.codecs import (
    SINGLE_OBJECT_MARKER,
    AvroCodec,
    DecodeError,
    SchemaError,
    ValidationError,
    avro,
    parse_avro_schema,
)

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ORDER_AVSC = REPO_SCHEMAS / "order_event.avsc"
UTC = dt.timezone.utc

# The Parsing Canonical Form of schemas/order_event.avsc, written out by hand from the
# spec's rules (full names, only name/type/fields/symbols/items/values/size, that key
# order, no whitespace; doc, default, namespace and logicalType dropped).
ORDER_CANONICAL = (
    '{"name":"streamflow.examples.OrderEvent","type":"record","fields":['
    '{"name":"order_id","type":"string"},'
    '{"name":"user_id","type":"string"},'
    '{"name":"status","type":{"name":"streamflow.examples.OrderStatus","type":"enum",'
    '"symbols":["CREATED","PAID","SHIPPED","CANCELLED"]}},'
    '{"name":"amount","type":"bytes"},'
    '{"name":"currency","type":"string"},'
    '{"name":"timestamp","type":"long"}]}'
)


# -- reference CRC-64-AVRO, straight from the Avro specification ---------------------------

_EMPTY = 0xC15D213AA4D7A795
_MASK = (1 << 64) - 1


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp & _MASK)
    return table


_FP_TABLE = _fp_table()


def reference_crc64_avro(data: bytes) -> int:
    """``fingerprint64`` from the Avro spec, as an unsigned 64-bit int."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp & _MASK


@pytest.mark.parametrize(
    ("canonical", "signed_fp"),
    [
        # Test vectors published with Avro (share/test/data/schema-tests.txt).
        ('"null"', 7195948357588979594),
        ('"boolean"', -6970731678124411036),
        ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
        (
            '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
            7843277075252814651,
        ),
    ],
)
def test_reference_crc64_matches_spec_vectors(canonical: str, signed_fp: int) -> None:
    assert reference_crc64_avro(canonical.encode()) == signed_fp & _MASK


def test_parsed_record_fingerprint_matches_spec_vector() -> None:
    schema = parse_avro_schema(
        {"type": "record", "name": "foo", "fields": [{"name": "f1", "type": "boolean"}]}
    )
    assert schema.fingerprint == 7843277075252814651
    assert schema.fingerprint_bytes == (7843277075252814651).to_bytes(8, "little")


# -- fixtures -----------------------------------------------------------------------------


def order(**overrides: Any) -> dict[str, Any]:
    value = {
        "order_id": "o-1",
        "user_id": "u-1",
        "status": "PAID",
        "amount": Decimal("12.50"),
        "currency": "EUR",
        "timestamp": dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
    }
    value.update(overrides)
    return value


def order_json(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "order_id": "o-1",
        "user_id": "u-1",
        "status": "PAID",
        "amount": "12.50",
        "timestamp": "2024-05-01T12:00:00Z",
    }
    value.update(overrides)
    return value


def current_schema() -> dict[str, Any]:
    return json.loads(ORDER_AVSC.read_text())


def v1_schema() -> dict[str, Any]:
    schema = current_schema()
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "currency"]
    return schema


@pytest.fixture
def schemas_dir(tmp_path: Path) -> Path:
    """A schemas folder with the current OrderEvent, an older v1 and unrelated files."""
    shutil.copy(ORDER_AVSC, tmp_path / "order_event.avsc")
    (tmp_path / "order_event.v1.avsc").write_text(json.dumps(v1_schema()))
    (tmp_path / "user.avsc").write_text(
        json.dumps({"type": "record", "name": "User", "fields": [{"name": "id", "type": "string"}]})
    )
    return tmp_path


@pytest.fixture
def codec() -> AvroCodec:
    return AvroCodec.from_file(ORDER_AVSC)


# -- wire format --------------------------------------------------------------------------


def test_canonical_form_of_order_event(codec: AvroCodec) -> None:
    assert parse_avro_schema(current_schema()).canonical_form == ORDER_CANONICAL


def test_single_object_header(codec: AvroCodec) -> None:
    data = codec.encode(order())
    expected_fp = reference_crc64_avro(ORDER_CANONICAL.encode())
    assert data[:2] == b"\xc3\x01" == SINGLE_OBJECT_MARKER
    assert data[2:10] == expected_fp.to_bytes(8, "little")
    assert codec.fingerprint == expected_fp
    assert codec.header == data[:10]
    # The body is plain Avro binary that any Avro reader decodes with the schema.
    body = schemaless_reader(io.BytesIO(data[10:]), codec.schema, None)
    assert body == order()


def test_codec_properties(codec: AvroCodec) -> None:
    assert codec.record_name == "streamflow.examples.OrderEvent"
    assert codec.name == "avro:streamflow.examples.OrderEvent"
    assert codec.schema["name"] == "streamflow.examples.OrderEvent"
    assert [f["name"] for f in codec.schema["fields"]] == [
        "order_id",
        "user_id",
        "status",
        "amount",
        "currency",
        "timestamp",
    ]


def test_order_event_schema_has_docs() -> None:
    schema = current_schema()
    assert schema["namespace"] == "streamflow.examples"
    assert schema["doc"]
    assert all(f.get("doc") for f in schema["fields"])
    amount = next(f for f in schema["fields"] if f["name"] == "amount")["type"]
    assert amount == {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}


# -- round trips --------------------------------------------------------------------------


def test_round_trip(codec: AvroCodec) -> None:
    assert codec.decode(codec.encode(order())) == order()


def test_decimal_round_trip_is_exact(codec: AvroCodec) -> None:
    rng = random.Random(1234)
    amounts = [Decimal("0.10"), Decimal("0.20"), Decimal("-0.01"), Decimal("9999999999.99")]
    amounts += [Decimal(rng.randint(-(10**12) + 1, 10**12 - 1)).scaleb(-2) for _ in range(2000)]
    encoded = [codec.encode(order(amount=a)) for a in amounts]
    decoded = [v["amount"] for v in codec.decode_many(encoded)]
    assert decoded == amounts
    assert all(d.as_tuple().exponent == -2 for d in decoded)
    assert sum(decoded, Decimal(0)) == sum(amounts, Decimal(0))
    assert decoded[0] + decoded[1] == Decimal("0.30")


def test_decimal_fewer_places_are_padded_to_scale(codec: AvroCodec) -> None:
    assert str(codec.decode(codec.encode(order(amount=Decimal("7"))))["amount"]) == "7.00"


def test_timestamp_round_trip_keeps_instant_in_utc(codec: AvroCodec) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2024, 5, 1, 14, 0, 0, 5000, tzinfo=plus2)
    decoded = codec.decode(codec.encode(order(timestamp=when)))["timestamp"]
    assert decoded == when
    assert decoded.utcoffset() == dt.timedelta(0)
    # timestamp-millis: sub-millisecond digits are dropped on the wire.
    fine = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert codec.decode(codec.encode(order(timestamp=fine)))["timestamp"].microsecond == 123000


def test_missing_field_with_default_is_written_as_default(codec: AvroCodec) -> None:
    value = order()
    del value["currency"]
    assert codec.decode(codec.encode(value))["currency"] == "USD"


# -- schema evolution ---------------------------------------------------------------------


def test_reads_older_version_filling_defaults(schemas_dir: Path) -> None:
    writer = AvroCodec.from_file(schemas_dir / "order_event.v1.avsc", schemas_dir=Path("/none"))
    old = order()
    del old["currency"]
    data = writer.encode(old)
    assert data[2:10] == writer.fingerprint.to_bytes(8, "little")

    reader = avro("order_event", schemas_dir=schemas_dir)
    assert writer.fingerprint != reader.fingerprint
    assert sorted(reader.known_fingerprints) == sorted([reader.fingerprint, writer.fingerprint])
    assert reader.decode(data) == {**old, "currency": "USD"}


def test_older_reader_reads_newer_data_dropping_new_field(schemas_dir: Path) -> None:
    old_reader = AvroCodec.from_file(schemas_dir / "order_event.v1.avsc")
    new_writer = AvroCodec.from_file(schemas_dir / "order_event.avsc")
    decoded = old_reader.decode(new_writer.encode(order()))
    assert "currency" not in decoded
    assert decoded["amount"] == Decimal("12.50")


def test_register_writer_schema(codec: AvroCodec) -> None:
    writer = AvroCodec.from_schema(v1_schema())
    value = order()
    del value["currency"]
    data = writer.encode(value)
    with pytest.raises(DecodeError):
        codec.decode(data)
    assert codec.register_writer_schema(v1_schema()) == writer.fingerprint
    assert codec.decode(data)["currency"] == "USD"
    other = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}
    with pytest.raises(SchemaError, match="Other"):
        codec.register_writer_schema(other)


def test_unknown_fingerprint_names_it_in_hex(codec: AvroCodec) -> None:
    writer = AvroCodec.from_schema(v1_schema())  # not known to `codec`
    value = order()
    del value["currency"]
    with pytest.raises(
        DecodeError, match=f"unknown schema fingerprint 0x{writer.fingerprint:016x}"
    ):
        codec.decode(writer.encode(value))


def test_broken_version_file_is_schema_error_naming_it(schemas_dir: Path) -> None:
    broken = v1_schema()
    broken["fields"][0]["type"] = "strng"
    (schemas_dir / "order_event.v0.avsc").write_text(json.dumps(broken))
    with pytest.raises(SchemaError, match=r"order_event\.v0\.avsc.*strng"):
        avro("order_event", schemas_dir=schemas_dir)


def test_unparseable_unrelated_file_is_skipped_with_warning(
    schemas_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (schemas_dir / "notes.avsc").write_text("{ not json")
    with caplog.at_level(logging.WARNING):
        codec = avro("order_event", schemas_dir=schemas_dir)
    assert len(codec.known_fingerprints) == 2  # current + v1; User is another record
    assert "notes.avsc" in caplog.text


# -- decode errors ------------------------------------------------------------------------


def test_every_truncation_is_decode_error(codec: AvroCodec) -> None:
    data = codec.encode(order())
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:cut])


def test_trailing_bytes_are_decode_error(codec: AvroCodec) -> None:
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        codec.decode(codec.encode(order()) + b"\x00")


@pytest.mark.parametrize("prefix", [b"\x00\x01", b"\xc3\x00", b'{"'])
def test_bad_marker_is_decode_error(codec: AvroCodec, prefix: bytes) -> None:
    data = codec.encode(order())
    with pytest.raises(DecodeError, match="marker c3 01"):
        codec.decode(prefix + data[2:])


def test_decode_accepts_memoryview(codec: AvroCodec) -> None:
    assert codec.decode(memoryview(codec.encode(order()))) == order()


# -- bad schemas --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"type": "record", "name": "X", "fields": [', "invalid JSON"),
        ('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "strng"}]}', "strng"),
        ('{"type": "enum", "name": "E", "symbols": ["A"]}', "expected an Avro record schema"),
        ('{"type": "record", "name": "X"}', "fields"),
        (
            '{"type": "record", "name": "X", "fields": [{"name": "a", "type": '
            '{"type": "bytes", "logicalType": "decimal", "precision": 2, "scale": 3}}]}',
            "scale",
        ),
        (
            '{"type": "record", "name": "X", "fields": [{"name": "a", "type": '
            '{"type": "bytes", "logicalType": "decimal"}}]}',
            "precision",
        ),
        (
            '{"type": "record", "name": "X", "fields": '
            '[{"name": "a", "type": ["null", "string"], "default": "x"}]}',
            "default",
        ),
        (
            '{"type": "record", "name": "X", "fields": '
            '[{"name": "a", "type": "string"}, {"name": "a", "type": "long"}]}',
            "a",
        ),
    ],
)
def test_bad_avsc_is_schema_error_naming_file(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.avsc"
    path.write_text(text)
    with pytest.raises(SchemaError) as info:
        AvroCodec.from_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert problem in message


def test_missing_avsc_is_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read"):
        AvroCodec.from_file(tmp_path / "missing.avsc")


# -- locating schema files ----------------------------------------------------------------


def test_avro_uses_env_schemas_dir(schemas_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMFLOW_SCHEMAS_DIR", str(schemas_dir))
    monkeypatch.chdir(REPO_SCHEMAS.parent)  # ./schemas exists too but env wins
    assert len(avro("order_event").known_fingerprints) == 2


def test_avro_uses_cwd_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMFLOW_SCHEMAS_DIR", raising=False)
    monkeypatch.chdir(REPO_SCHEMAS.parent)
    assert avro("order_event").record_name == "streamflow.examples.OrderEvent"


def test_avro_falls_back_to_app_file_folder(
    tmp_path: Path, schemas_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAMFLOW_SCHEMAS_DIR", raising=False)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    app_file = schemas_dir.parent / "app.py"
    shutil.copytree(schemas_dir, schemas_dir.parent / "schemas", dirs_exist_ok=True)
    assert avro("order_event", app_file=app_file).record_name == "streamflow.examples.OrderEvent"
    with pytest.raises(SchemaError, match="not found"):
        avro("order_event")


# -- from_json ----------------------------------------------------------------------------


def test_from_json_converts_types_and_fills_defaults(codec: AvroCodec) -> None:
    value = codec.from_json(order_json())
    assert value == {
        "order_id": "o-1",
        "user_id": "u-1",
        "status": "PAID",
        "amount": Decimal("12.50"),
        "currency": "USD",
        "timestamp": dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.5", "12.50"),
        (12.5, "12.50"),
        (12, "12.00"),
        ("12.500", "12.50"),  # extra places that are zeros lose nothing
        (0.1, "0.10"),
        ("-0.01", "-0.01"),
        ("9999999999.99", "9999999999.99"),
        ("1E+3", "1000.00"),
    ],
)
def test_from_json_decimal(codec: AvroCodec, raw: Any, expected: str) -> None:
    amount = codec.from_json(order_json(amount=raw))["amount"]
    assert str(amount) == expected


@pytest.mark.parametrize(
    "raw",
    [
        1714564800000,
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T12:00:00",  # no offset: UTC
        "2024-05-01T12:00:00.000Z",
    ],
)
def test_from_json_timestamp(codec: AvroCodec, raw: Any) -> None:
    ts = codec.from_json(order_json(timestamp=raw))["timestamp"]
    assert ts == dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert ts.utcoffset() == dt.timedelta(0)


def test_from_json_timestamp_fraction(codec: AvroCodec) -> None:
    ts = codec.from_json(order_json(timestamp="2024-05-01T12:00:00.250Z"))["timestamp"]
    assert ts.microsecond == 250000
    assert codec.from_json(order_json(timestamp=1714564800250))["timestamp"] == ts


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"amount": "12.345"}, "amount", "at most 2 decimal places"),
        ({"amount": 0.1 + 0.2}, "amount", "at most 2 decimal places"),  # no silent rounding
        ({"amount": "12345678901"}, "amount", "at most 12 digits"),
        ({"amount": "abc"}, "amount", "decimal(12,2)"),
        ({"amount": "NaN"}, "amount", "finite"),
        ({"amount": True}, "amount", "bool"),
        ({"amount": None}, "amount", "None"),
        ({"status": "REFUNDED"}, "status", "CREATED, PAID, SHIPPED, CANCELLED"),
        ({"status": 1}, "status", "expected one of"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO-8601"),
        ({"timestamp": 1.5}, "timestamp", "epoch milliseconds"),
        ({"currency": 5}, "currency", "expected a string"),
        ({"coupon": "X"}, "coupon", "unknown field 'coupon'"),
    ],
)
def test_from_json_validation_errors(
    codec: AvroCodec, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        codec.from_json(order_json(**overrides))
    assert info.value.field == field
    assert fragment in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_from_json_missing_required_field(codec: AvroCodec) -> None:
    raw = order_json()
    del raw["user_id"]
    with pytest.raises(ValidationError, match="missing") as info:
        codec.from_json(raw)
    assert info.value.field == "user_id"


def test_from_json_not_an_object(codec: AvroCodec) -> None:
    with pytest.raises(ValidationError, match="expected an object") as info:
        codec.from_json(["o-1"])
    assert info.value.field == ""


DEC = {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}
BASKET = {
    "type": "record",
    "name": "Basket",
    "namespace": "t",
    "fields": [
        {
            "name": "items",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Line",
                    "fields": [
                        {"name": "sku", "type": "string"},
                        {"name": "price", "type": DEC},
                        {"name": "qty", "type": "int", "default": 1},
                    ],
                },
            },
        },
        {"name": "attrs", "type": {"type": "map", "values": "long"}, "default": {}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "discount", "type": ["null", DEC], "default": None},
        {"name": "raw", "type": "bytes", "default": "\u00ff"},
    ],
}


@pytest.fixture
def basket() -> AvroCodec:
    return AvroCodec.from_schema(BASKET)


def basket_json(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "items": [{"sku": "a", "price": "1.00"}, {"sku": "b", "price": 2, "qty": 3}],
    }
    value.update(overrides)
    return value


def test_from_json_nested_defaults_and_unions(basket: AvroCodec) -> None:
    value = basket.from_json(basket_json(discount="0.5", raw="AAE="))
    assert value == {
        "items": [
            {"sku": "a", "price": Decimal("1.00"), "qty": 1},
            {"sku": "b", "price": Decimal("2.00"), "qty": 3},
        ],
        "attrs": {},
        "note": None,
        "discount": Decimal("0.50"),
        "raw": b"\x00\x01",
    }
    assert basket.decode(basket.encode(value)) == value
    assert basket.from_json(basket_json())["raw"] == b"\xff"  # latin-1 default per the spec
    # Mutable defaults are copied, not shared between records.
    first = basket.from_json(basket_json())
    first["attrs"]["x"] = 1
    assert basket.from_json(basket_json())["attrs"] == {}


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        (
            {"items": [{"sku": "a", "price": "1"}, {"sku": "b", "price": "1"}, {"sku": "c"}]},
            "items[2].price",
            "missing",
        ),
        (
            {"items": [{"sku": "a", "price": "1"}, {"sku": "b", "price": "1.001"}]},
            "items[1].price",
            "decimal places",
        ),
        ({"items": [{"sku": "a", "price": "1", "color": "red"}]}, "items[0].color", "unknown"),
        ({"items": {"sku": "a"}}, "items", "expected an array"),
        ({"attrs": {"color": "red"}}, 'attrs["color"]', "integer"),
        ({"note": 5}, "note", "expected a string"),
        ({"discount": ["x"]}, "discount", "decimal(8,2)"),
        ({"discount": "1.234"}, "discount", "decimal places"),
        ({"raw": "%%%"}, "raw", "base64"),
    ],
)
def test_from_json_nested_error_paths(
    basket: AvroCodec, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        basket.from_json(basket_json(**overrides))
    assert info.value.field == field
    assert fragment in info.value.reason


# -- encode validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"amount": 12.5}, "amount", "Decimal(str(x))"),
        ({"amount": Decimal("1.005")}, "amount", "quantize"),
        ({"amount": Decimal("1E+11")}, "amount", "at most 12 digits"),
        ({"timestamp": dt.datetime(2024, 5, 1)}, "timestamp", "timezone-aware"),
        ({"status": "paid"}, "status", "CREATED"),
        ({"order_id": 7}, "order_id", "expected a string"),
        ({"extra": 1}, "extra", "unknown field"),
    ],
)
def test_encode_validation_errors(
    codec: AvroCodec, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        codec.encode(order(**overrides))
    assert info.value.field == field
    assert fragment in info.value.reason


def test_encode_missing_required_field(codec: AvroCodec) -> None:
    value = order()
    del value["order_id"]
    with pytest.raises(ValidationError) as info:
        codec.encode(value)
    assert info.value.field == "order_id"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"amount": 12.5}, "amount"), ({"status": "X"}, "status"), ({"order_id": None}, "order_id")],
)
def test_encode_without_prevalidation_still_raises_validation_error(
    overrides: dict[str, Any], field: str
) -> None:
    codec = AvroCodec.from_file(ORDER_AVSC, validate=False)
    with pytest.raises(ValidationError) as info:
        codec.encode(order(**overrides))
    assert info.value.field == field


# -- to_json ------------------------------------------------------------------------------


def test_to_json_of_decoded_order(codec: AvroCodec) -> None:
    decoded = codec.decode(codec.encode(order()))
    out = codec.to_json(decoded)
    assert out == {
        "order_id": "o-1",
        "user_id": "u-1",
        "status": "PAID",
        "amount": "12.50",
        "currency": "EUR",
        "timestamp": "2024-05-01T12:00:00.123000+00:00",
    }
    assert orjson.loads(orjson.dumps(out)) == out
    assert codec.from_json(out) == decoded  # to_json and from_json are inverses


def test_from_schema_json_text_equals_dict() -> None:
    schema = current_schema()
    from_text = AvroCodec.from_schema(json.dumps(schema))
    from_dict = AvroCodec.from_schema(copy.deepcopy(schema))
    assert from_text.fingerprint == from_dict.fingerprint
    assert from_dict.known_fingerprints == [from_dict.fingerprint]  # no folder scanned
