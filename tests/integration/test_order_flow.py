"""Processors, stores and timers on a real worker: the order flow app, on both brokers.

Orders reserve stock (``inventory``, by SKU), reserved orders wait for their payment with a
30-second wall-clock timeout (``payment``, by order id). The worker is stopped while the
timers are pending and a new worker with an empty state folder takes over: the timers come
back from their changelog and fire once, at their time, with no record coming.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict

import orjson
import pytest

from streamflow.client import Client
from tests.integration.support import AppRun, wait_until

pytestmark = pytest.mark.kafka

APP = "apps/order_flow.py"
TOPICS = (
    "orders",
    "stock_changes",
    "payment_requests",
    "payments",
    "stock_releases",
    "order_status",
    "notifications",
)
STOCK = {"apple": 12, "pear": 8, "plum": 5}


def test_timers_survive_a_restart_and_fire_once(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path=APP)
    topics = {name: f"{name}-{run.run_id}" for name in TOPICS}
    run.extra_env.update({f"STREAMFLOW_TOPIC_{n.upper()}": t for n, t in topics.items()})
    run.extra_env.update(
        ORDER_FLOW_PAYMENT_TIMEOUT_MINUTES="0.5",
        ORDER_FLOW_PARTITIONS="2",
        ORDER_FLOW_PAYMENT_RETRY_SECONDS="0.5",
    )
    rng = random.Random(12)
    t0 = int(time.time() * 1000)

    def send(topic: str, records: list[tuple[str, dict, int]]) -> None:
        run.send_records(topics[topic], [(k.encode(), orjson.dumps(v), ts) for k, v, ts in records])

    def statuses() -> dict[str, list[str]]:
        by_order: dict[str, list[str]] = defaultdict(list)
        for record in run.read(topics["order_status"], value="json", idle=1.0):
            by_order[record["key"]].append(record["value"]["status"])
        return by_order

    orders = {
        f"o{i:03d}": {"sku": rng.choice(sorted(STOCK)), "quantity": rng.randint(1, 3)}
        for i in range(40)
    }
    send("stock_changes", [(sku, {"quantity": n}, t0) for sku, n in STOCK.items()])
    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
    try:
        wait_until(lambda: dict(client.items("stock")) == STOCK, "the stock")
        send(
            "orders",
            [
                (oid, {"order_id": oid, "user_id": "u1", **o}, t0 + i)
                for i, (oid, o) in enumerate(orders.items())
            ],
        )
        wait_until(lambda: len(statuses()) == len(orders), "a reservation status per order")
        first = statuses()
        reserved = [oid for oid, s in first.items() if s == ["RESERVED"]]
        assert reserved and len(reserved) < len(orders)  # some stock ran out
        paid = set(rng.sample(reserved, len(reserved) // 2))
        declined = sorted(set(reserved) - paid)[0]
        # The charging agent: every other card times out once at the gateway (retried),
        # one is declined (dead-lettered), each request is sent twice (charged once).
        requests = [
            (oid, {"order_id": oid, "amount": "4.00", "card": "flaky-1" if n % 2 else "4242"})
            for n, oid in enumerate(sorted(paid))
        ]
        requests.append((declined, {"order_id": declined, "amount": "4.00", "card": "declined"}))
        send("payment_requests", [(k, v, t0 + 1000) for k, v in requests + requests])
        wait_until(
            lambda: sum("PAID" in s for s in statuses().values()) == len(paid), "the payments"
        )
    finally:
        assert worker.stop() == 0

    # A new worker, empty state folder: the pending timers come back from the changelog.
    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
    try:
        assert not any("CANCELLED" in s for s in statuses().values())  # none fired yet
        unpaid = set(reserved) - paid
        wait_until(
            lambda: sum("CANCELLED" in s for s in statuses().values()) == len(unpaid),
            "the payment timeouts",
            timeout=90,
        )
        time.sleep(2)  # a second firing would show now
        final = statuses()
        stock = dict(client.items("stock"))
        kept = dict(client.items("reservations"))
        charged = dict(client.items("charges"))
        confirmed = run.read(topics["payments"], value="json", idle=1.0)
        letters = run.read(f"{run.app_id}-dlq", value="str", idle=1.0)
    finally:
        assert worker.stop() == 0

    terminal = {"REJECTED", "PAID", "CANCELLED"}
    for oid in orders:
        ends = [s for s in final[oid] if s in terminal]
        assert len(ends) == 1, (oid, final[oid])
        expected = "PAID" if oid in paid else "CANCELLED" if oid in reserved else "REJECTED"
        assert ends == [expected], (oid, final[oid])
    # Stock is conserved: what is gone is what the paid orders took; none went negative.
    taken: dict[str, int] = defaultdict(int)
    for oid in paid:
        taken[orders[oid]["sku"]] += orders[oid]["quantity"]
    assert stock == {sku: n - taken[sku] for sku, n in STOCK.items()}
    assert kept == {oid: orders[oid]["quantity"] for oid in paid}
    # Each paid order charged and confirmed exactly once; the declined one dead-lettered
    # twice (it was requested twice), with its bytes.
    assert set(charged) == paid
    assert sorted(r["key"] for r in confirmed) == sorted(paid)
    assert [r["key"] for r in letters] == [declined, declined]
    assert all('"card":"declined"' in r["value"] for r in letters)
