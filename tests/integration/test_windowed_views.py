"""Windowed tables through table views: one entry per window, on a real worker."""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from decimal import Decimal

import pytest

from streamflow import avro
from streamflow.client import Client, ClientError
from streamflow.topics import Topic
from tests.integration.support import AppRun, generate

pytestmark = pytest.mark.kafka

MINUTE = 60_000


def _eventually(read, expected, timeout: float = 120):
    """The answer of ``read()`` once it equals ``expected``, or its last after ``timeout``."""
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = read()
        except ClientError:
            answer = None
        if answer == expected:
            break
        time.sleep(0.5)
    return answer


def test_windowed_tables_answer_one_entry_per_window(broker, tmp_path):
    run = AppRun(
        broker, tmp_path / "state", app_path="tests/integration/apps/spending_per_minute.py"
    )
    orders = generate(400, 8, seed=61)
    base = (int(time.time() * 1000) // MINUTE - 10) * MINUTE
    codec = Topic("orders", key="str", value=avro("order_event")).value_codec
    records = []
    per_minute: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    per_two: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for i, order in enumerate(orders):
        timestamp = base + (i % 5) * MINUTE + i  # five minutes of orders
        value = codec.encode(codec.from_json(order))
        records.append((order["order_id"].encode(), value, timestamp))
        if order["status"] == "PAID":
            user = order["user_id"]
            minute = timestamp - timestamp % MINUTE
            per_minute[user][minute] += Decimal(order["amount"])
            for start in (minute, minute - MINUTE):  # 2-minute windows every minute
                per_two[user][start] += 1
    run.send_records(run.orders_topic, records)

    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
    try:
        user = sorted(per_minute)[0]
        expected = [
            {"start": start, "end": start + MINUTE, "value": str(total)}
            for start, total in sorted(per_minute[user].items())
        ]
        assert _eventually(lambda: client.get("spending-per-minute", user), expected) == expected
        hopping = client.get("orders-per-two-minutes", user)
        assert [(w["start"], w["end"], w["value"]) for w in hopping] == [
            (start, start + 2 * MINUTE, count) for start, count in sorted(per_two[user].items())
        ]
        # Listing gives one entry per (user, window), in key then window order.
        entries = list(client.items("spending-per-minute"))
        assert [(k["key"], k["start"], Decimal(v)) for k, v in entries] == [
            (u, start, total)
            for u in sorted(per_minute)
            for start, total in sorted(per_minute[u].items())
        ]
        only_user = list(client.items("spending-per-minute", prefix=user))
        assert {k["key"] for k, _ in only_user} == {user}
    finally:
        assert worker.stop() == 0


def test_windows_past_their_retention_are_deleted_and_stay_deleted(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path="tests/integration/apps/expiring_windows.py")
    codec = Topic("orders", key="str", value=avro("order_event")).value_codec
    users = [f"user-{n}" for n in range(6)]
    base = (int(time.time() * 1000) // MINUTE - 30) * MINUTE

    def record(n: int, user: str, timestamp: int) -> tuple[bytes, bytes, int]:
        paid = {"order_id": f"o-{n}", "user_id": user, "status": "PAID", "amount": "1.00"}
        value = codec.encode(codec.from_json({**paid, "currency": "USD", "timestamp": timestamp}))
        return f"o-{n}".encode(), value, timestamp

    # Three minutes of orders: every user has a window in each minute.
    early = [record(n, users[n % 6], base + (n // 6) * 20_000) for n in range(54)]
    run.send_records(run.orders_topic, early)
    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)

    def windows() -> list[tuple[str, int, int]]:
        return [(k["key"], k["start"], v) for k, v in client.items("orders-per-minute")]

    try:
        first = [(u, base + m * MINUTE, 3) for u in users for m in range(3)]
        assert _eventually(windows, first) == first
        # Stream time jumps ten minutes ahead: windows retained 3 minutes are deleted.
        later = base + 10 * MINUTE
        kept = [(u, later, 1) for u in users]
        run.send_records(run.orders_topic, [record(100 + i, u, later) for i, u in enumerate(users)])
        assert _eventually(windows, kept) == kept
    finally:
        assert worker.stop() == 0
    # Deleted from the changelog too: a worker rebuilding the table does not bring them back.
    shutil.rmtree(tmp_path / "state")
    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
    try:
        assert _eventually(windows, kept) == kept
    finally:
        assert worker.stop() == 0
