""""User spending" in Quix Streams (a baseline streamflow competes with).

Orders (key order_id, value single-object Avro ``OrderEvent``) -> keep PAID -> ``group_by``
user_id (repartition topic) -> exact per-user Decimal sum in RocksDB state -> every update to
the output topic (key user_id, value the total as ``"1234.50"``). Quix Streams produces every
record (repartition and output) with the timestamp of the record being processed, so the
output timestamp is the input record's timestamp.

Usage::

    BENCH_BROKER=127.0.0.1:9092 BENCH_APP_ID=us-quix-1 \\
    BENCH_INPUT_TOPIC=orders BENCH_OUTPUT_TOPIC=user-spending \\
    BENCH_PROCESSING_GUARANTEE=exactly_once BENCH_STATE_DIR=/tmp/us-quix-1 \\
        python bench/baselines/quix_user_spending.py

Environment:
    BENCH_BROKER                 host:port (default 127.0.0.1:9092)
    BENCH_APP_ID                 consumer group (default quix-user-spending)
    BENCH_INPUT_TOPIC            orders topic (default order-events)
    BENCH_OUTPUT_TOPIC           output topic (default user-spending-summary)
    BENCH_PROCESSING_GUARANTEE   at_least_once (default) | exactly_once
    BENCH_STATE_DIR              RocksDB state directory (default ./quix-state)
    BENCH_COMMIT_INTERVAL        seconds between commits (default: Quix's own, 5.0)
    BENCH_ORDER_SCHEMA           path of order_event.avsc (default schemas/order_event.avsc)
"""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from quixstreams import Application, State
from quixstreams.models import Deserializer, SerializationContext

REPO_ROOT = Path(__file__).resolve().parents[2]


class SingleObjectAvroDeserializer(Deserializer):
    """Deserialize Avro single-object encoding (``C3 01`` + fingerprint + body) to a dict."""

    def __init__(self, schema_path: str) -> None:
        super().__init__()
        with open(schema_path, encoding="utf-8") as fh:
            schema_json = json.load(fh)
        self._schema = fastavro.parse_schema(schema_json)
        canonical = to_parsing_canonical_form(schema_json)
        self._header = b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))

    def __call__(self, value: bytes, ctx: SerializationContext) -> dict[str, Any]:
        if value[:10] != self._header:
            raise ValueError(f"unexpected single-object header {value[:10].hex()}")
        return fastavro.schemaless_reader(io.BytesIO(value[10:]), self._schema, None)


def add_to_total(order: dict[str, str], state: State) -> str:
    """Add the order's amount to the user's running total; return the new total."""
    total = Decimal(state.get("total", "0.00")) + Decimal(order["amount"])
    state.set("total", str(total))
    return str(total)


def bench_application(default_group: str) -> Application:
    """A Quix Streams application configured from the ``BENCH_*`` environment variables
    every baseline shares (broker, group, guarantee, state directory, commit interval)."""
    guarantee = os.environ.get("BENCH_PROCESSING_GUARANTEE", "at_least_once")
    kwargs: dict[str, Any] = {}
    if os.environ.get("BENCH_COMMIT_INTERVAL"):
        kwargs["commit_interval"] = float(os.environ["BENCH_COMMIT_INTERVAL"])
    return Application(
        broker_address=os.environ.get("BENCH_BROKER", "127.0.0.1:9092"),
        consumer_group=os.environ.get("BENCH_APP_ID", default_group),
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once" if guarantee == "exactly_once" else "at-least-once",
        state_dir=os.environ.get("BENCH_STATE_DIR", "quix-state"),
        loglevel="WARNING",
        **kwargs,
    )


def build_app() -> Application:
    """Build the Quix Streams application from ``BENCH_*`` environment variables."""
    app = bench_application("quix-user-spending")
    schema_path = os.environ.get(
        "BENCH_ORDER_SCHEMA", str(REPO_ROOT / "schemas" / "order_event.avsc")
    )
    orders = app.topic(
        os.environ.get("BENCH_INPUT_TOPIC", "order-events"),
        key_deserializer="str",
        value_deserializer=SingleObjectAvroDeserializer(schema_path),
    )
    output = app.topic(
        os.environ.get("BENCH_OUTPUT_TOPIC", "user-spending-summary"),
        key_serializer="str",
        value_serializer="str",
    )

    sdf = app.dataframe(orders)
    sdf = sdf.filter(lambda order: order["status"] == "PAID")
    # Only JSON-friendly fields go through the (JSON) repartition topic.
    sdf = sdf.apply(lambda order: {"user_id": order["user_id"], "amount": str(order["amount"])})
    sdf = sdf.group_by("user_id")
    sdf = sdf.apply(add_to_total, stateful=True)
    sdf.to_topic(output)
    return app


if __name__ == "__main__":
    build_app().run()
