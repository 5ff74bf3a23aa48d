"""Evolution helpers behind ``streamflow schemas check``, topic binding of codecs, examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamflow.codecs import AvroCodec, StrCodec
from streamflow.codecs.avro_evolution import (
    SchemaSet,
    check_versions,
    current_schemas,
    next_version_name,
)
from streamflow.codecs.avro_registry import SchemaRegistryAvroCodec
from streamflow.codecs.avro_schema import parse_avro_schema
from streamflow.codecs.errors import SchemaError
from streamflow.topics import Topic

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDER_AVSC = REPO_ROOT / "schemas" / "order_event.avsc"
REGISTRY = "http://127.0.0.1:9"  # never contacted by these tests


def record(source: str, *fields: dict, name: str = "R"):
    return parse_avro_schema({"type": "record", "name": name, "fields": list(fields)}, source)


X = {"name": "x", "type": "int"}
Y_DEFAULT = {"name": "y", "type": "int", "default": 0}
Y = {"name": "y", "type": "int"}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("backward", ["r.avsc reads r.v1.avsc"]),
        ("forward", ["r.v1.avsc reads r.avsc"]),
        ("full", ["r.avsc reads r.v1.avsc", "r.v1.avsc reads r.avsc"]),
    ],
)
def test_modes_choose_directions(mode: str, expected: list[str]) -> None:
    current, old = record("r.avsc", X, Y_DEFAULT), record("r.v1.avsc", X)
    checks = check_versions([current], [current, old], mode)
    assert [c.describe() for c in checks] == expected
    assert all(c.compatible for c in checks)


def test_problems_name_fields_and_other_records_are_ignored() -> None:
    current, old = record("r.avsc", X, Y), record("r.v1.avsc", X)
    other = record("o.avsc", name="Other")
    checks = check_versions([current], [current, old, other])
    assert len(checks) == 1
    assert checks[0].problems == (
        "y: field missing from the writer schema and has no default in the reader schema",
    )


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode must be one of backward, forward, full"):
        check_versions([], [], "both")


def test_current_schemas_per_record() -> None:
    schemas = [
        record("a.v1.avsc", name="A"),
        record("a.avsc", name="A"),
        record("b.v3.avsc", name="B"),
        record("b.v12.avsc", name="B"),
        record("twin.avsc", name="A"),
    ]
    assert sorted(s.source for s in current_schemas(schemas)) == [
        "a.avsc",
        "b.v12.avsc",
        "twin.avsc",
    ]


def test_next_version_name_counts_versions_of_the_record_only() -> None:
    kept = [record("s/r.avsc"), record("s/r.v4.avsc"), record("s/o.v9.avsc", name="O")]
    assert next_version_name(kept[0], kept) == "r.v5.avsc"
    assert next_version_name(record("s/r.v4.avsc"), kept) == "r.v5.avsc"


def test_schema_set_from_folder_keeps_errors(tmp_path: Path) -> None:
    (tmp_path / "a.avsc").write_text(ORDER_AVSC.read_text())
    (tmp_path / "b.avsc").write_text('{"type": "enum", "name": "E", "symbols": ["A"]}')
    (tmp_path / "notes.txt").write_text("not a schema")
    found = SchemaSet.from_folder(tmp_path)
    assert [s.source for s in found.schemas] == [str(tmp_path / "a.avsc")]
    assert len(found.errors) == 1
    assert isinstance(found.errors[0], SchemaError)
    assert str(found.errors[0]).startswith(f"{tmp_path / 'b.avsc'}: expected an Avro record")


# -- codecs bound to their topic ------------------------------------------------------------


def test_topic_binds_registry_subjects_topic_name_strategy() -> None:
    codec = SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=REGISTRY)
    topic = Topic("orders", key=codec, value=codec)
    assert (topic.key_codec.subject, topic.value_codec.subject) == ("orders-key", "orders-value")
    assert codec.subject == "streamflow.examples.OrderEvent"  # the original stays unbound
    assert topic.value_codec.name == "avro-registry:streamflow.examples.OrderEvent"
    # A topic built from another topic's codec (a repartition topic) gets its own subject.
    assert Topic("orders-copy", value=topic.value_codec).value_codec.subject == (
        "orders-copy-value"
    )


def test_explicit_subject_is_kept() -> None:
    codec = SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=REGISTRY, subject="orders")
    assert Topic("t", value=codec).value_codec is codec


def test_other_codecs_are_shared_between_topics() -> None:
    codec = StrCodec()
    assert Topic("t", key=codec).key_codec is codec


def test_avro_uses_registry_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamflow.codecs import avro

    monkeypatch.delenv("STREAMFLOW_SCHEMA_REGISTRY_URL", raising=False)
    plain = avro("order_event", schemas_dir=ORDER_AVSC.parent)
    assert type(plain) is AvroCodec
    monkeypatch.setenv("STREAMFLOW_SCHEMA_REGISTRY_URL", REGISTRY)
    codec = avro("order_event", schemas_dir=ORDER_AVSC.parent)
    assert isinstance(codec, SchemaRegistryAvroCodec)
    assert codec.registry_url == REGISTRY
    explicit = avro("order_event", schemas_dir=ORDER_AVSC.parent, registry="http://other:8081")
    assert explicit.registry_url == "http://other:8081"


def test_registry_codec_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMFLOW_SCHEMA_REGISTRY_URL", raising=False)
    with pytest.raises(SchemaError, match="no Schema Registry URL"):
        SchemaRegistryAvroCodec.from_file(ORDER_AVSC)


def test_registry_codec_rejects_other_framing_without_asking_the_registry() -> None:
    from streamflow.codecs import DecodeError

    codec = SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=REGISTRY)
    with pytest.raises(DecodeError, match=r"magic byte 00\) nor Avro single-object .*7b 22"):
        codec.decode(json.dumps({"a": 1}).encode())
    with pytest.raises(DecodeError, match="truncated Schema Registry header: 3 bytes"):
        codec.decode(b"\x00\x00\x01")


def test_registry_codec_reads_single_object_encoding_offline() -> None:
    from decimal import Decimal

    plain = AvroCodec.from_file(ORDER_AVSC)
    value = plain.from_json(
        {"order_id": "o", "user_id": "u", "status": "PAID", "amount": "1.50", "timestamp": 0}
    )
    codec = SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=REGISTRY)
    assert codec.decode(plain.encode(value))["amount"] == Decimal("1.50")
