"""check_compatibility: reader/writer schema resolution problems, by field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from streamflow.codecs import SchemaError, check_compatibility, parse_avro_schema

ORDER_AVSC = Path(__file__).resolve().parents[2] / "schemas" / "order_event.avsc"


def current() -> dict[str, Any]:
    return json.loads(ORDER_AVSC.read_text())


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def without(schema: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["fields"] = [f for f in out["fields"] if f["name"] != name]
    return out


def test_identical_schemas_are_compatible() -> None:
    assert check_compatibility(current(), current()) == []


def test_added_field_with_default_is_compatible() -> None:
    v1 = without(current(), "currency")
    assert check_compatibility(current(), v1) == []  # new reader, old data
    assert check_compatibility(v1, current()) == []  # old reader ignores the new field


def test_added_field_without_default_is_incompatible() -> None:
    reader = copy.deepcopy(current())
    reader["fields"].append({"name": "channel", "type": "string"})
    problems = check_compatibility(reader, current())
    assert len(problems) == 1
    assert problems[0].startswith("channel: ")
    assert "no default" in problems[0]


def test_changed_type_is_incompatible() -> None:
    reader = copy.deepcopy(current())
    field(reader, "order_id")["type"] = "long"
    problems = check_compatibility(reader, current())
    assert problems == [
        "order_id: type mismatch: reader type: long not compatible with writer type: string"
    ]


def test_promotable_type_is_compatible() -> None:
    writer = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}
    reader = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    assert check_compatibility(reader, writer) == []
    assert check_compatibility(writer, reader) != []  # long does not narrow to int


def test_removed_enum_symbol_is_incompatible() -> None:
    reader = copy.deepcopy(current())
    field(reader, "status")["type"]["symbols"].remove("CANCELLED")
    problems = check_compatibility(reader, current())
    assert len(problems) == 1
    assert problems[0].startswith("status: ")
    assert "CANCELLED" in problems[0]
    # Adding a symbol is fine for a reader.
    assert check_compatibility(current(), reader) == []


def test_changed_decimal_scale_is_incompatible() -> None:
    reader = copy.deepcopy(current())
    field(reader, "amount")["type"]["scale"] = 3
    problems = check_compatibility(reader, current())
    assert len(problems) == 1
    assert problems[0].startswith("amount: ")
    assert "decimal(12,2)" in problems[0] and "decimal(12,3)" in problems[0]


def test_renamed_record_is_incompatible() -> None:
    reader = copy.deepcopy(current())
    reader["name"] = "Order"
    problems = check_compatibility(reader, current())
    assert len(problems) == 1
    assert "does not match" in problems[0]


def test_nested_problems_name_their_path() -> None:
    writer = {
        "type": "record",
        "name": "Basket",
        "fields": [
            {
                "name": "items",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Line",
                        "fields": [{"name": "price", "type": "int"}],
                    },
                },
            }
        ],
    }
    reader = copy.deepcopy(writer)
    reader["fields"][0]["type"]["items"]["fields"][0]["type"] = "string"
    problems = check_compatibility(reader, writer)
    assert len(problems) == 1
    assert problems[0].startswith("items[].price: ")


def test_accepts_paths_text_and_parsed_schemas() -> None:
    v1 = without(current(), "currency")
    assert check_compatibility(ORDER_AVSC, json.dumps(v1)) == []
    assert check_compatibility(parse_avro_schema(current()), parse_avro_schema(v1).parsed) == []


def test_unparseable_schema_is_schema_error() -> None:
    with pytest.raises(SchemaError, match="reader schema"):
        check_compatibility("{not json", current())
