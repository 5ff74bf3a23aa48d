""""User spending" hand-written in plain faust-streaming (the baseline streamflow competes with).

Orders (key order_id, value single-object Avro ``OrderEvent``) -> keep PAID -> re-key by
user_id through a repartition topic -> exact per-user sum in a RocksDB-backed table ->
every update to the output topic (key user_id, value the total as ``"1234.50"``).

The repartition step is an explicit agent instead of ``stream.group_by`` because
``group_by`` forwards without a timestamp, so the repartitioned record would get the
producer's wall clock; here every produced record carries the *input* record's timestamp.

Usage::

    BENCH_BROKER=127.0.0.1:9092 BENCH_APP_ID=us-faust-1 \\
    BENCH_INPUT_TOPIC=orders BENCH_OUTPUT_TOPIC=user-spending \\
    BENCH_PROCESSING_GUARANTEE=exactly_once BENCH_STATE_DIR=/tmp/us-faust-1 \\
        python bench/baselines/faust_user_spending.py worker -l warn

Environment:
    BENCH_BROKER                 host:port (default 127.0.0.1:9092)
    BENCH_APP_ID                 faust app id = consumer group (default faust-user-spending)
    BENCH_INPUT_TOPIC            orders topic (default order-events)
    BENCH_OUTPUT_TOPIC           output topic (default user-spending-summary)
    BENCH_PROCESSING_GUARANTEE   at_least_once (default) | exactly_once
    BENCH_STATE_DIR              faust datadir (RocksDB files; default ./faust-data)
    BENCH_PARTITIONS             partitions of the repartition/changelog topics (default 8)
    BENCH_COMMIT_INTERVAL        seconds between commits (default: faust's own, 2.8)
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
import faust
from fastavro.schema import fingerprint, to_parsing_canonical_form

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("BENCH_BROKER", "127.0.0.1:9092")
APP_ID = os.environ.get("BENCH_APP_ID", "faust-user-spending")
INPUT_TOPIC = os.environ.get("BENCH_INPUT_TOPIC", "order-events")
OUTPUT_TOPIC = os.environ.get("BENCH_OUTPUT_TOPIC", "user-spending-summary")
GUARANTEE = os.environ.get("BENCH_PROCESSING_GUARANTEE", "at_least_once")
STATE_DIR = os.environ.get("BENCH_STATE_DIR", "faust-data")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
COMMIT_INTERVAL = os.environ.get("BENCH_COMMIT_INTERVAL")
SCHEMA_PATH = os.environ.get("BENCH_ORDER_SCHEMA", str(REPO_ROOT / "schemas/order_event.avsc"))

with open(SCHEMA_PATH, encoding="utf-8") as _fh:
    _SCHEMA_JSON = json.load(_fh)
ORDER_SCHEMA = fastavro.parse_schema(_SCHEMA_JSON)
# Single-object encoding header: C3 01 + little-endian CRC-64-AVRO fingerprint.
HEADER = b"\xc3\x01" + bytes.fromhex(
    fingerprint(to_parsing_canonical_form(_SCHEMA_JSON), "CRC-64-AVRO")
)


def decode_order(raw: bytes) -> dict[str, Any]:
    """Decode a single-object-encoded ``OrderEvent``; raise ``ValueError`` on a bad header."""
    if raw[:10] != HEADER:
        raise ValueError(f"unexpected single-object header {raw[:10].hex()}")
    return fastavro.schemaless_reader(io.BytesIO(raw[10:]), ORDER_SCHEMA, None)


def to_faust_ts(timestamp_s: float | None) -> float | None:
    """Turn a received timestamp (seconds) back into one faust re-sends as the same ms.

    faust converts ms -> s on receive and ``int(s * 1000)`` on send, which can lose a
    millisecond to float rounding; half a millisecond of headroom keeps it exact.
    """
    if timestamp_s is None:
        return None
    return (round(timestamp_s * 1000) + 0.5) / 1000


settings: dict[str, Any] = {
    "broker": f"kafka://{BROKER}",
    "store": "rocksdb://",
    "datadir": STATE_DIR,
    "processing_guarantee": GUARANTEE,
    "topic_partitions": PARTITIONS,
    "topic_replication_factor": 1,
    "consumer_auto_offset_reset": "earliest",
    "web_enabled": False,
}
if COMMIT_INTERVAL:
    settings["broker_commit_interval"] = float(COMMIT_INTERVAL)

app = faust.App(APP_ID, **settings)

orders_topic = app.topic(INPUT_TOPIC, key_serializer="raw", value_serializer="raw")
by_user_topic = app.topic(
    f"{APP_ID}-orders-by-user-repartition",
    key_serializer="raw",
    value_serializer="raw",
    partitions=PARTITIONS,
    internal=True,
)
output_topic = app.topic(OUTPUT_TOPIC, key_serializer="raw", value_serializer="raw")

# Running total per user, in cents (an exact Decimal with 2 places, stored as an int).
totals = app.Table("user-totals", default=int, partitions=PARTITIONS)


@app.agent(orders_topic)
async def repartition_paid(stream: faust.StreamT) -> None:
    """Keep PAID orders and re-key them by user_id (value forwarded as-is)."""
    async for event in stream.events():
        order = decode_order(event.value)
        if order["status"] != "PAID":
            continue
        await by_user_topic.send(
            key=order["user_id"].encode(),
            value=event.value,
            timestamp=to_faust_ts(event.message.timestamp),
        )


@app.agent(by_user_topic)
async def sum_per_user(stream: faust.StreamT) -> None:
    """Add each PAID amount to the user's total and emit the new total."""
    async for event in stream.events():
        order = decode_order(event.value)
        user_id = order["user_id"]
        amount: Decimal = order["amount"]
        cents = totals[user_id] + int(amount.scaleb(2))
        totals[user_id] = cents
        await output_topic.send(
            key=user_id.encode(),
            value=str(Decimal(cents).scaleb(-2)).encode(),
            timestamp=to_faust_ts(event.message.timestamp),
        )


if __name__ == "__main__":
    app.main()
