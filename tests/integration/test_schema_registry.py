"""The Schema Registry wire format against a real registry and confluent-kafka's own serdes.

The registry is the one ``scripts/schema-registry`` runs (started here when it is not
running, or ``STREAMFLOW_TEST_SCHEMA_REGISTRY`` names another one).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streamflow.codecs import AvroCodec, DecodeError, RegistryError
from streamflow.codecs.avro_registry import SchemaRegistryAvroCodec
from streamflow.runtime.worker import free_port
from streamflow.topics import Topic
from tests.integration.support import AppRun, expected_totals, generate, updates_by_user

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "schema-registry"
ORDER_AVSC = ROOT / "schemas" / "order_event.avsc"
UTC = dt.timezone.utc


@pytest.fixture(scope="session")
def registry_url() -> Iterator[str]:
    """A running Schema Registry: ``$STREAMFLOW_TEST_SCHEMA_REGISTRY``, else the script's."""
    if os.environ.get("STREAMFLOW_TEST_SCHEMA_REGISTRY"):
        yield os.environ["STREAMFLOW_TEST_SCHEMA_REGISTRY"]
        return
    started = subprocess.run([SCRIPT, "status"], capture_output=True).returncode != 0
    if started:
        done = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"scripts/schema-registry start failed:\n{done.stderr}")
    try:
        yield subprocess.run([SCRIPT, "url"], capture_output=True, text=True).stdout.strip()
    finally:
        if started:
            subprocess.run([SCRIPT, "stop"], capture_output=True)


@pytest.fixture(scope="session")
def client(registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url})


def v2() -> dict[str, Any]:
    return json.loads(ORDER_AVSC.read_text())


def v1() -> dict[str, Any]:
    """OrderEvent before ``currency`` (which v2 added with a default)."""
    schema = v2()
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "currency"]
    return schema


def order(**overrides: Any) -> dict[str, Any]:
    value = {
        "order_id": "order-1",
        "user_id": "user-7",
        "status": "PAID",
        "amount": Decimal("1234.50"),
        "currency": "EUR",
        "timestamp": dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
    }
    value.update(overrides)
    return value


def unique_topic() -> str:
    return f"orders-{uuid.uuid4().hex[:10]}"


def bound(codec: SchemaRegistryAvroCodec, topic: str) -> SchemaRegistryAvroCodec:
    return Topic(topic, value=codec).value_codec


def test_streamflow_and_confluent_write_the_same_bytes(
    registry_url: str, client: SchemaRegistryClient
) -> None:
    topic = unique_topic()
    codec = bound(SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=registry_url), topic)
    data = codec.encode(order())
    latest = client.get_latest_version(f"{topic}-value")
    assert data[:5] == b"\x00" + latest.schema_id.to_bytes(4, "big")
    assert codec.schema_id == latest.schema_id

    ctx = SerializationContext(topic, MessageField.VALUE)
    assert AvroDeserializer(client)(data, ctx) == order()
    serializer = AvroSerializer(
        client,
        json.dumps(v2()),
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    confluent_bytes = serializer(order(), ctx)
    assert confluent_bytes == data
    # A fresh codec knows no schema id yet: it fetches the writer schema by id.
    fresh = SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=registry_url)
    assert fresh.decode(confluent_bytes) == order()


def test_old_schema_registered_by_confluent_reads_with_defaults(
    registry_url: str, client: SchemaRegistryClient, tmp_path: Path
) -> None:
    topic = unique_topic()
    ctx = SerializationContext(topic, MessageField.VALUE)
    old = {k: v for k, v in order().items() if k != "currency"}
    confluent_bytes = AvroSerializer(client, json.dumps(v1()))(old, ctx)

    # The reader's folder holds v2 only: the writer schema can only come from the registry.
    shutil.copy(ORDER_AVSC, tmp_path / "order_event.avsc")
    reader = SchemaRegistryAvroCodec.from_file(tmp_path / "order_event.avsc", registry=registry_url)
    assert reader.decode(confluent_bytes) == {**old, "currency": "USD"}

    # The same schema and value written by streamflow: the same id, the same bytes.
    writer = bound(SchemaRegistryAvroCodec.from_schema(v1(), registry=registry_url), topic)
    assert writer.encode(old) == confluent_bytes
    assert AvroDeserializer(client, json.dumps(v2()))(writer.encode(old), ctx) == {
        **old,
        "currency": "USD",
    }


def test_registry_refuses_incompatible_schema(
    registry_url: str, client: SchemaRegistryClient
) -> None:
    topic = unique_topic()
    client.set_compatibility(subject_name=f"{topic}-value", level="BACKWARD")
    bound(SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=registry_url), topic).encode(
        order()
    )
    broken = v2()
    next(f for f in broken["fields"] if f["name"] == "user_id")["type"] = "long"
    codec = bound(SchemaRegistryAvroCodec.from_schema(broken, registry=registry_url), topic)
    with pytest.raises(RegistryError) as raised:
        codec.encode(order(user_id=7))
    message = str(raised.value)
    assert (
        "refused schema streamflow.examples.OrderEvent (<inline schema>) under subject" in message
    )
    assert f"'{topic}-value'" in message and "(HTTP 409)" in message


def test_unknown_id_and_other_record_are_decode_errors(
    registry_url: str, client: SchemaRegistryClient
) -> None:
    codec = SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=registry_url)
    missing = 2**31 - 1
    with pytest.raises(DecodeError, match=f"schema id {missing} at .*: not found in the registry"):
        codec.decode(b"\x00" + missing.to_bytes(4, "big") + b"\x02")
    user = {"type": "record", "name": "User", "fields": [{"name": "id", "type": "string"}]}
    user_id = client.register_schema(f"{unique_topic()}-value", Schema(json.dumps(user), "AVRO"))
    with pytest.raises(DecodeError, match=r"record User, not streamflow\.examples\.OrderEvent"):
        codec.decode(b"\x00" + user_id.to_bytes(4, "big") + b"\x02a")


def test_unreachable_registry_is_registry_error() -> None:
    url = f"http://127.0.0.1:{free_port(0)}"
    codec = bound(SchemaRegistryAvroCodec.from_file(ORDER_AVSC, registry=url), unique_topic())
    with pytest.raises(RegistryError, match=f"cannot reach the Schema Registry at {url}: "):
        codec.encode(order())
    with pytest.raises(RegistryError, match=f"cannot reach the Schema Registry at {url}: "):
        codec.decode(b"\x00\x00\x00\x00\x07\x02")


@pytest.mark.kafka
def test_topic_of_mixed_versions_and_formats(
    kafka_bootstrap: str,
    registry_url: str,
    client: SchemaRegistryClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """v2 from ``streamflow produce``, v1 from confluent-kafka, v1 single-object encoded."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(ORDER_AVSC, schemas / "order_event.avsc")
    (schemas / "order_event.v1.avsc").write_text(json.dumps(v1()))
    monkeypatch.setenv("STREAMFLOW_SCHEMAS_DIR", str(schemas))
    monkeypatch.setenv("STREAMFLOW_SCHEMA_REGISTRY_URL", registry_url)
    run = AppRun(kafka_bootstrap, tmp_path / "state")
    orders = generate(300, 10, seed=7)
    new, old_registry, old_single = orders[:100], orders[100:200], orders[200:]
    for o in old_registry + old_single:
        o.pop("currency")

    run.produce_orders(new)
    v1_codec = AvroCodec.from_schema(v1())
    serializer = AvroSerializer(client, json.dumps(v1()))
    ctx = SerializationContext(run.orders_topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for o in old_registry:
        producer.produce(run.orders_topic, serializer(v1_codec.from_json(o), ctx), o["order_id"])
    for o in old_single:
        producer.produce(run.orders_topic, v1_codec.encode(v1_codec.from_json(o)), o["order_id"])
    assert producer.flush(30) == 0

    versions = client.get_versions(f"{run.orders_topic}-value")
    assert len(versions) == 2  # v2 registered by streamflow, v1 by confluent-kafka

    consumed = run.cli(
        "consume", "--app", run.app_path, "order_events", "--from-beginning", "--max", "300"
    )
    assert consumed.returncode == 0, consumed.stderr.decode()
    values = {
        r["value"]["order_id"]: r["value"] for r in map(orjson.loads, consumed.stdout.splitlines())
    }
    expected = {o["order_id"]: {"currency": "USD", **o} for o in orders}
    assert {k: _comparable(v) for k, v in values.items()} == {
        k: _comparable(v) for k, v in expected.items()
    }

    # The app itself, through its repartition topic (a subject of its own) to its table.
    worker = run.worker().start()
    try:
        paid = sum(1 for o in orders if o["status"] == "PAID")
        records = run.wait_for_records(run.summary_topic, paid)
    finally:
        worker.stop()
    totals, _ = expected_totals(orders)
    assert {user: values[-1] for user, values in updates_by_user(records).items()} == totals
    assert f"{run.app_id}-orders-by-user-repartition-value" in client.get_subjects()


def _comparable(value: dict[str, Any]) -> dict[str, Any]:
    """Consumed JSON and generated orders in one shape (timestamps as epoch ms)."""
    out = copy.deepcopy(value)
    if isinstance(out["timestamp"], str):
        out["timestamp"] = int(dt.datetime.fromisoformat(out["timestamp"]).timestamp() * 1000)
    out["amount"] = Decimal(out["amount"])
    return out
