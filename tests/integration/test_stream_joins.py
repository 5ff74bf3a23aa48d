"""A windowed stream-stream left join on a real worker: orders matched with payments."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from streamflow.client import Client
from streamflow.runtime.sender import partition_for
from tests.integration.support import AppRun, wait_until

pytestmark = pytest.mark.kafka

APP = "tests/integration/apps/order_payments.py"
PARTITIONS = 8


def _keys_covering_every_partition(prefix: str) -> list[str]:
    keys: dict[int, str] = {}
    n = 0
    while len(keys) < PARTITIONS:
        key = f"{prefix}-{n}"
        keys.setdefault(partition_for(key.encode(), PARTITIONS), key)
        n += 1
    return list(keys.values())


def test_paid_and_unpaid_orders_are_reported_exactly_once(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path=APP)
    topics = {n: f"{n}-{run.run_id}" for n in ("orders", "payments", "order_status")}
    run.extra_env.update({f"STREAMFLOW_TOPIC_{n.upper()}": t for n, t in topics.items()})
    base = int(time.time() * 1000) - 3_600_000
    orders = [(f"o{i}", base + i * 100) for i in range(60)]
    paid = {key for i, (key, _) in enumerate(orders) if i % 4 != 0}
    late = {"o1"}  # paid 70 s after the order: outside the window, so unpaid
    paid -= late

    def record(key: str, value: dict, timestamp: int) -> tuple[bytes, bytes, int]:
        return key.encode(), orjson.dumps(value), timestamp

    run.send_records(topics["orders"], [record(k, {"n": k}, t) for k, t in orders])
    run.send_records(
        topics["payments"],
        [record(k, {"p": k}, t + 5_000) for k, t in orders if k in paid]
        + [record(k, {"p": k}, t + 70_000) for k, t in orders if k in late],
    )
    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
    try:
        wait_until(lambda: len(list(client.items("status-left"))) == len(orders), "the orders")
        wait_until(
            lambda: len(list(client.items("status-right"))) == len(paid) + len(late),
            "the payments",
        )
        # Records an hour later in every partition close the windows.
        ticks = [record(k, {"n": k}, base + 3_600_000) for k in _keys_covering_every_partition("t")]
        run.send_records(topics["orders"], ticks)
        run.wait_for_records(topics["order_status"], len(orders), value="json")
        time.sleep(2)  # anything extra would show up now
        status = run.read(topics["order_status"], value="json")
    finally:
        assert worker.stop() == 0
    assert Counter(r["key"] for r in status) == Counter(k for k, _ in orders)
    assert {r["key"]: r["value"]["paid"] for r in status} == {k: k in paid for k, _ in orders}
