"""Order generator for the "user spending" benchmark.

Generates a deterministic stream of ``OrderEvent`` records (``schemas/order_event.avsc``),
encodes them with Avro *single-object encoding* and produces them to Kafka, keeping the
ground truth (exact per-user sum of PAID amounts and the PAID count) for verification.

Single-object encoding (Avro spec, "Single object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the parsing canonical form | body

Usage::

    python bench/orders.py --topic orders-test --orders 200000 --users 50 --partitions 8
    python bench/orders.py --topic orders-test --truth-only      # print ground truth only

As a library::

    from orders import OrderCodec, produce_orders
    truth = produce_orders("127.0.0.1:9092", "orders-x", n=50_000, users=50, seed=1)
    truth.paid, truth.totals["user-0007"]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "schemas" / "order_event.avsc"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"

#: Status mix of generated orders: ~60% PAID.
STATUS_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("PAID", 0.60),
    ("CREATED", 0.20),
    ("SHIPPED", 0.10),
    ("CANCELLED", 0.10),
)
#: Amounts are uniform in [1.00, 500.00], in cents.
MIN_CENTS = 100
MAX_CENTS = 50_000


class OrderCodec:
    """Encode/decode ``OrderEvent`` records in Avro single-object encoding.

    Usage::

        codec = OrderCodec()                      # loads schemas/order_event.avsc
        raw = codec.encode({"order_id": "o1", ...})
        record = codec.decode(raw)
    """

    def __init__(self, schema_path: Path | str = SCHEMA_PATH) -> None:
        with open(schema_path, encoding="utf-8") as fh:
            self.schema_json: dict[str, Any] = json.load(fh)
        self.parsed = fastavro.parse_schema(self.schema_json)
        canonical = to_parsing_canonical_form(self.schema_json)
        # fastavro returns the CRC-64-AVRO fingerprint as the hex of its little-endian bytes,
        # which is exactly the byte order the single-object header needs.
        self.fingerprint: bytes = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        self.header: bytes = SINGLE_OBJECT_MAGIC + self.fingerprint

    def encode(self, record: dict[str, Any]) -> bytes:
        """Return ``header + avro_binary(record)``."""
        buf = io.BytesIO()
        buf.write(self.header)
        fastavro.schemaless_writer(buf, self.parsed, record)
        return buf.getvalue()

    def decode(self, raw: bytes) -> dict[str, Any]:
        """Decode one single-object-encoded record; raise ``ValueError`` on a foreign header."""
        if raw[:10] != self.header:
            raise ValueError(f"not an OrderEvent single-object record: header {raw[:10].hex()}")
        return fastavro.schemaless_reader(io.BytesIO(raw[10:]), self.parsed, None)


class Order(NamedTuple):
    """One generated order (timestamp is assigned when it is produced)."""

    order_id: str
    user_id: str
    status: str
    amount: Decimal


@dataclass
class GroundTruth:
    """Expected result of the job: exact per-user sum of PAID amounts and PAID counts."""

    orders: int = 0
    paid: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    paid_counts: dict[str, int] = field(default_factory=dict)

    def add(self, order: Order) -> None:
        """Account one order."""
        self.orders += 1
        if order.status == "PAID":
            self.paid += 1
            self.totals[order.user_id] = self.totals.get(order.user_id, Decimal("0.00")) + (
                order.amount
            )
            self.paid_counts[order.user_id] = self.paid_counts.get(order.user_id, 0) + 1

    def merged(self, other: GroundTruth) -> GroundTruth:
        """Return the truth after the orders of ``self`` then ``other``."""
        out = GroundTruth(self.orders + other.orders, self.paid + other.paid)
        for src in (self, other):
            for user, total in src.totals.items():
                out.totals[user] = out.totals.get(user, Decimal("0.00")) + total
            for user, count in src.paid_counts.items():
                out.paid_counts[user] = out.paid_counts.get(user, 0) + count
        return out

    def expected_values(self) -> dict[str, str]:
        """Per-user expected output value, formatted like the job's output (``"1234.50"``)."""
        return {user: format(total, ".2f") for user, total in self.totals.items()}

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "orders": self.orders,
            "paid": self.paid,
            "users_with_paid": len(self.totals),
            "totals": self.expected_values(),
            "paid_counts": dict(self.paid_counts),
        }


def user_name(index: int) -> str:
    """User id of the ``index``-th user (``user-0007``)."""
    return f"user-{index:04d}"


def generate_orders(n: int, users: int, seed: int, start: int = 0) -> Iterator[Order]:
    """Yield ``n`` deterministic orders for ``users`` users.

    Order ids are ``o<seed>-<start + i>`` so runs with different seeds/starts never collide.

    Usage::

        for order in generate_orders(10, users=3, seed=42):
            print(order)
    """
    rng = random.Random(seed)
    names = [user_name(i) for i in range(users)]
    statuses = [s for s, _ in STATUS_WEIGHTS]
    cumulative: list[float] = []
    acc = 0.0
    for _, weight in STATUS_WEIGHTS:
        acc += weight
        cumulative.append(acc)
    for i in range(start, start + n):
        r = rng.random()
        status = statuses[-1]
        for s, edge in zip(statuses, cumulative, strict=True):
            if r < edge:
                status = s
                break
        user = names[rng.randrange(users)]
        amount = Decimal(rng.randint(MIN_CENTS, MAX_CENTS)).scaleb(-2)
        yield Order(f"o{seed}-{i:09d}", user, status, amount)


def ground_truth(orders: Iterable[Order]) -> GroundTruth:
    """Compute the ground truth of an iterable of orders."""
    truth = GroundTruth()
    for order in orders:
        truth.add(order)
    return truth


def order_record(order: Order, timestamp_ms: int) -> dict[str, Any]:
    """The Avro record for ``order`` with event time ``timestamp_ms``."""
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "status": order.status,
        "amount": order.amount,
        "currency": "USD",
        "timestamp": timestamp_ms,
    }


def bulk_producer_config(broker: str) -> dict[str, Any]:
    """confluent-kafka producer settings for fast bulk preloading."""
    return {
        "bootstrap.servers": broker,
        "acks": "all",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "compression.type": "none",
    }


def produce_orders(
    broker: str,
    topic: str,
    n: int,
    users: int,
    seed: int,
    start: int = 0,
    rate: float | None = None,
    codec: OrderCodec | None = None,
    producer_config: dict[str, Any] | None = None,
) -> GroundTruth:
    """Produce ``n`` generated orders to ``topic`` and return their ground truth.

    Key = order_id (utf-8), value = single-object Avro, Kafka record timestamp = the record's
    ``timestamp`` field = wall-clock time of production (ms). With ``rate`` (events/s) the
    orders are paced in 5 ms slices; without it they are produced as fast as possible.

    Usage::

        truth = produce_orders("127.0.0.1:9092", "orders-x", 50_000, users=50, seed=1)
        truth = produce_orders(broker, topic, 20_000, 50, seed=2, start=50_000, rate=2000)
    """
    from confluent_kafka import KafkaException, Producer

    codec = codec or OrderCodec()
    if producer_config is None:
        producer_config = bulk_producer_config(broker)
        if rate is not None:
            producer_config["linger.ms"] = 2
    producer = Producer(producer_config)
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    truth = GroundTruth()
    t0 = time.monotonic()
    for sent, order in enumerate(generate_orders(n, users, seed, start)):
        if rate is not None:
            due = t0 + sent / rate
            delay = due - time.monotonic()
            if delay > 0.005:
                producer.poll(0)
                time.sleep(delay)
        ts = int(time.time() * 1000)
        value = codec.encode(order_record(order, ts))
        while True:
            try:
                producer.produce(
                    topic,
                    key=order.order_id.encode(),
                    value=value,
                    timestamp=ts,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        truth.add(order)
        if sent % 10_000 == 9_999:
            producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise KafkaException(f"{remaining} orders not delivered to {topic} within 60s")
    if errors:
        raise KafkaException(f"{len(errors)} orders failed delivery to {topic}: {errors[0]}")
    return truth


def create_topics(broker: str, names: Iterable[str], partitions: int, timeout: float = 30) -> None:
    """Create ``names`` with ``partitions`` partitions (replication 1); fail if one exists.

    Usage::

        create_topics("127.0.0.1:9092", ["orders-x", "out-x"], partitions=8)
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names],
        operation_timeout=timeout,
    )
    for future in futures.values():
        future.result(timeout)
    # Wait until the metadata shows every partition, so producers never race creation.
    deadline = time.monotonic() + timeout
    wanted = set(names)
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=5).topics
        if all(t in md and len(md[t].partitions) == partitions for t in wanted):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics {sorted(wanted)} not visible after {timeout}s")


def delete_topics_matching(broker: str, token: str, timeout: float = 30) -> list[str]:
    """Delete every topic whose name contains ``token``; return the names deleted.

    Usage::

        delete_topics_matching("127.0.0.1:9092", "bench-us-3f9a1c")
    """
    from confluent_kafka.admin import AdminClient

    if len(token) < 8:
        raise ValueError("refusing to delete topics by a token shorter than 8 characters")
    admin = AdminClient({"bootstrap.servers": broker})
    names = [t for t in admin.list_topics(timeout=10).topics if token in t]
    if names:
        for future in admin.delete_topics(names, operation_timeout=timeout).values():
            try:
                future.result(timeout)
            except Exception as exc:  # already gone, or deletion still pending: keep going
                print(f"orders: could not delete a topic: {exc}", file=sys.stderr)
    return names


def main(argv: list[str] | None = None) -> int:
    """CLI: produce orders to a topic and print the ground truth as JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--broker", default="127.0.0.1:9092")
    p.add_argument("--topic", help="topic to produce to (required unless --truth-only)")
    p.add_argument("--orders", type=int, default=200_000)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", type=int, default=0, help="index of the first order id")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--rate", type=float, default=None, help="pace to this many events/s")
    p.add_argument("--create", action="store_true", help="create the topic first")
    p.add_argument("--truth-only", action="store_true", help="only compute the ground truth")
    p.add_argument("--totals", action="store_true", help="include per-user totals in the output")
    args = p.parse_args(argv)

    if not args.truth_only and not args.topic:
        p.error("--topic is required unless --truth-only")
    if args.truth_only:
        truth = ground_truth(generate_orders(args.orders, args.users, args.seed, args.start))
        elapsed = 0.0
    else:
        if args.create:
            create_topics(args.broker, [args.topic], args.partitions)
        t0 = time.monotonic()
        truth = produce_orders(
            args.broker, args.topic, args.orders, args.users, args.seed, args.start, args.rate
        )
        elapsed = time.monotonic() - t0
    summary = truth.to_json()
    if not args.totals:
        summary.pop("totals")
        summary.pop("paid_counts")
    summary["produce_seconds"] = round(elapsed, 3)
    if elapsed:
        summary["produce_events_per_s"] = round(truth.orders / elapsed)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
