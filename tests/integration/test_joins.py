"""Joins on a real worker: orders enriched with a customer table, on both brokers.

The worker runs ``apps/order_enrichment.py``: PAID orders re-keyed by user (a repartition the
join adds), joined with the ``customers`` table read from its topic, written to
``enriched_orders``, summed per region; orders of users without a profile go to
``unknown_customer_orders``. Profiles change and are deleted while the worker runs. The
``order-regions`` table, a foreign-key join of the latest order events with the customers,
follows both.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from decimal import Decimal

import orjson
import pytest

from streamflow.client import Client
from tests.integration.support import AppRun, generate, wait_until

pytestmark = pytest.mark.kafka

APP = "apps/order_enrichment.py"
REGIONS = ("amer", "apac", "emea")


def _profile(user: str, region: str) -> dict:
    return {"user_id": user, "name": user.title(), "region": region, "tier": "gold"}


def test_orders_are_enriched_with_the_customer_table_as_it_changes(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path=APP)
    topics = {
        name: f"{name}-{run.run_id}"
        for name in (
            "customers",
            "enriched_orders",
            "unknown_customer_orders",
            "payments",
            "settled_orders",
        )
    }
    run.extra_env.update({f"STREAMFLOW_TOPIC_{n.upper()}": t for n, t in topics.items()})
    users = [f"user-{n:03d}" for n in range(12)]
    regions = {u: REGIONS[i % 3] for i, u in enumerate(users) if u != "user-005"}

    def produce_profiles(profiles: list[dict]) -> None:
        lines = b"".join(orjson.dumps(p) + b"\n" for p in profiles)
        result = run.cli("produce", "--app", APP, "customers", "--key", "user_id", stdin=lines)
        assert result.returncode == 0, result.stderr.decode()

    def paid(orders: list[dict]) -> list[dict]:
        return [o for o in orders if o["status"] == "PAID"]

    produce_profiles([_profile(u, r) for u, r in regions.items()])
    worker = run.worker().start()
    client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
    try:
        wait_until(lambda: len(list(client.items("customers"))) == len(regions), "the profiles")
        first = generate(400, len(users), seed=81)
        run.produce_orders(first)
        known = [o for o in paid(first) if o["user_id"] in regions]
        unknown = [o for o in paid(first) if o["user_id"] not in regions]
        assert known and unknown
        run.wait_for_records(topics["enriched_orders"], len(known), value="json")
        run.wait_for_records(topics["unknown_customer_orders"], len(unknown), value="json")

        # user-001 moves to apac, user-002 is deleted, user-005 gets a profile.
        moved = {**regions, "user-001": "apac", "user-005": "emea"}
        del moved["user-002"]
        produce_profiles([_profile("user-001", "apac"), _profile("user-005", "emea")])
        run.send_records(topics["customers"], [(b"user-002", None, None)])
        wait_until(
            lambda: (
                dict(client.items("customers")).get("user-001", {}).get("region") == "apac"
                and "user-002" not in dict(client.items("customers"))
                and "user-005" in dict(client.items("customers"))
            ),
            "the profile changes",
        )
        second = generate(300, len(users), seed=82)
        run.produce_orders(second)
        known2 = [o for o in paid(second) if o["user_id"] in moved]
        unknown2 = [o for o in paid(second) if o["user_id"] not in moved]
        run.wait_for_records(topics["enriched_orders"], len(known) + len(known2), value="json")
        run.wait_for_records(
            topics["unknown_customer_orders"], len(unknown) + len(unknown2), value="json"
        )
        # The foreign-key join: each order's latest status next to its customer's region
        # now (user-005's old orders joined once the profile came, user-002's left).
        latest = {o["order_id"]: o for o in first + second}
        order_regions = {
            order_id: {"status": o["status"], "region": moved[o["user_id"]]}
            for order_id, o in latest.items()
            if o["user_id"] in moved
        }
        assert any(o["user_id"] == "user-005" for o in first)
        wait_until(
            lambda: dict(client.items("order-regions")) == order_regions,
            "the foreign-key join to follow the orders and the profile changes",
        )
        time.sleep(2)  # anything extra would show up now
        assert dict(client.items("order-regions")) == order_regions
        enriched = run.read(topics["enriched_orders"], value="json")
        missing = run.read(topics["unknown_customer_orders"], value="json")
        revenue = {k: Decimal(v) for k, v in client.items("region-revenue")}
        per_region = dict(client.items("customers-per-region"))
    finally:
        assert worker.stop() == 0

    # Each PAID order of a known user enriched exactly once, with the profile of its time.
    got = Counter((r["key"], r["value"]["order_id"], r["value"]["region"]) for r in enriched)
    expected = Counter(
        [(o["user_id"], o["order_id"], regions[o["user_id"]]) for o in known]
        + [(o["user_id"], o["order_id"], moved[o["user_id"]]) for o in known2]
    )
    assert got == expected
    assert Counter(r["key"] for r in missing) == Counter(o["user_id"] for o in unknown + unknown2)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for o in known:
        totals[regions[o["user_id"]]] += Decimal(o["amount"])
    for o in known2:
        totals[moved[o["user_id"]]] += Decimal(o["amount"])
    assert revenue == dict(totals)
    # The re-aggregated table follows moves and deletions: counts of the profiles now held.
    counts = Counter(moved.values())
    assert {r: n for r, n in per_region.items() if n} == dict(counts)
    assert set(per_region) <= set(REGIONS)
