"""Order pipeline: two chained aggregations, so one batch writes several topics and changelogs.

orders (Avro) -> keep PAID -> map to an order line (order, user, region, amount)
-> re-key by user -> per-user totals in ``user-totals`` -> every update to ``user_totals``
-> re-key the updates by the user's region -> per-region totals in ``region-totals``
-> every update to ``region_totals``.

Each update carries the order that caused it (``last_order``, ``last_amount``), so the
region totals are sums of the very order amounts the user totals added, and every output
record names the input record behind it.

Run it:
    $ streamflow worker apps/order_pipeline.py
Query it:
    $ streamflow consume --app apps/order_pipeline.py region_totals --from-beginning
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

import streamflow

REGIONS = ("amer", "apac", "emea", "latam")

app = streamflow.App("order-pipeline")

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
user_totals = app.topic("user_totals", key="str", value="json")
region_totals = app.topic("region_totals", key="str", value="json")


def region_of(user_id: str) -> str:
    """The region a user is homed in: a stable lookup, the same user always gets the same one.

    >>> region_of("user-001") in REGIONS
    True
    >>> region_of("user-001") == region_of("user-001")
    True
    """
    return REGIONS[zlib.crc32(user_id.encode()) % len(REGIONS)]


def order_line(order: dict[str, Any]) -> dict[str, Any]:
    """The part of an order the pipeline needs, with the user's region looked up.

    >>> line = order_line({"order_id": "o1", "user_id": "user-001", "amount": Decimal("2.50")})
    >>> line["amount"], line["region"] in REGIONS
    ('2.50', True)
    """
    return {
        "order_id": order["order_id"],
        "user_id": order["user_id"],
        "region": region_of(order["user_id"]),
        "amount": str(order["amount"]),
    }


def no_orders() -> dict[str, Any]:
    """The aggregate of a user or region before its first order.

    >>> no_orders()
    {'count': 0, 'total': '0.00'}
    """
    return {"count": 0, "total": "0.00"}


def add_order(user_id: str, line: dict[str, Any], totals: dict[str, Any]) -> dict[str, Any]:
    """A user's totals after one more paid order (a new dict; ``totals`` is not changed).

    >>> add_order("u", {"order_id": "o1", "region": "emea", "amount": "2.50"}, no_orders())
    {'count': 1, 'total': '2.50', 'region': 'emea', 'last_order': 'o1', 'last_amount': '2.50'}
    """
    return {
        "count": totals["count"] + 1,
        "total": str(Decimal(totals["total"]) + Decimal(line["amount"])),
        "region": line["region"],
        "last_order": line["order_id"],
        "last_amount": line["amount"],
    }


def add_user_update(region: str, update: dict[str, Any], totals: dict[str, Any]) -> dict[str, Any]:
    """A region's totals after one more update of one of its users (one more paid order).

    >>> update = {"region": "emea", "last_order": "o1", "last_amount": "2.50"}
    >>> add_user_update("emea", update, no_orders())
    {'count': 1, 'total': '2.50', 'last_order': 'o1', 'last_amount': '2.50'}
    """
    return {
        "count": totals["count"] + 1,
        "total": str(Decimal(totals["total"]) + Decimal(update["last_amount"])),
        "last_order": update["last_order"],
        "last_amount": update["last_amount"],
    }


per_user = (
    app.stream(order_events)
    .filter(lambda order_id, order: order["status"] == "PAID")
    .map_values(order_line, codec="json")
    .group_by(lambda order_id, line: line["user_id"], name="orders-by-user")
    .aggregate(no_orders, add_order, name="user-totals", value="json")
)
user_updates = per_user.to_stream()
user_updates.to(user_totals)

per_region = user_updates.group_by(
    lambda user_id, totals: totals["region"], name="user-totals-by-region"
).aggregate(no_orders, add_user_update, name="region-totals", value="json")
per_region.to_stream().to(region_totals)
