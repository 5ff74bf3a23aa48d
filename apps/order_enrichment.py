"""Order enrichment: a stream-table join, then revenue per region and per customer tier.

orders (Avro, keyed by order id) -> keep PAID -> re-key by user (a repartition, added by the
join) -> join with the ``customers`` table (read from the ``customers`` topic: the latest
profile per user, a tombstone deletes the user) -> every enriched order to
``enriched_orders`` -> re-key by region -> revenue per region in ``region-revenue``.
Orders of users without a profile are dropped by the inner join; ``unknown_customer_orders``
gets them through a left join, for follow-up. ``customers-per-region`` re-aggregates the
customers table: a customer who moves leaves one region's count and joins another's.
``order-regions`` is a foreign-key join: the latest event of every order (a table keyed by
order id) joined with the profile of its ``user_id``: each order's status and its customer's
region, kept right as orders change and customers move. ``settled_orders`` is a windowed
stream-stream join: each PAID order with the ``payments`` record of its order id (keyed by
order id and partitioned as the order events are) within an hour either side.

Run it:
    $ streamflow worker apps/order_enrichment.py
Feed it:
    $ echo '{"user_id": "user-001", "name": "Ada", "region": "emea", "tier": "gold"}' | \\
        streamflow produce --app apps/order_enrichment.py customers --key user_id
Query it:
    $ streamflow table get apps/order_enrichment.py customers user-001
    $ streamflow table list apps/order_enrichment.py region-revenue
    $ streamflow table get apps/order_enrichment.py order-regions order-000001
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import streamflow

app = streamflow.App("order-enrichment")

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
customer_profiles = app.topic("customers", key="str", value="json")
enriched_orders = app.topic("enriched_orders", key="str", value="json")
unknown_customer_orders = app.topic("unknown_customer_orders", key="str", value="json")
payments = app.topic("payments", key="str", value="json")
settled_orders = app.topic("settled_orders", key="str", value="json")


def enrich(order: dict[str, Any], customer: dict[str, Any]) -> dict[str, Any]:
    """An order with the profile of the customer who placed it.

    >>> enrich({"order_id": "o1", "amount": Decimal("2.50")}, {"region": "emea", "tier": "gold"})
    {'order_id': 'o1', 'amount': '2.50', 'region': 'emea', 'tier': 'gold'}
    """
    return {
        "order_id": order["order_id"],
        "amount": str(order["amount"]),
        "region": customer["region"],
        "tier": customer["tier"],
    }


customers = app.table_of(customer_profiles, name="customers")
customers_per_region = customers.group_by(
    lambda user_id, customer: customer["region"], name="customers-by-region"
).count(name="customers-per-region")


def order_region(order: dict[str, Any], customer: dict[str, Any]) -> dict[str, Any]:
    """An order's status next to its customer's region.

    >>> order_region({"status": "PAID", "user_id": "u1"}, {"region": "emea"})
    {'status': 'PAID', 'region': 'emea'}
    """
    return {"status": order["status"], "region": customer["region"]}


orders = app.stream(order_events)
latest_orders = orders.to_table(name="latest-orders")
order_regions = latest_orders.join(
    customers, order_region, foreign_key=lambda order: order["user_id"], name="order-regions"
)

paid_by_user = orders.filter(lambda order_id, order: order["status"] == "PAID").select_key(
    lambda order_id, order: order["user_id"]
)
enriched = paid_by_user.join(customers, enrich, name="enrich")
enriched.to(enriched_orders)

(
    paid_by_user.left_join(customers, lambda order, customer: customer, name="find-customer")
    .filter(lambda user_id, customer: customer is None)
    .map_values(lambda _: {"reason": "no customer profile"})
    .to(unknown_customer_orders)
)

region_revenue = enriched.group_by(
    lambda user_id, order: order["region"], name="orders-by-region"
).aggregate(
    lambda: Decimal("0.00"),
    lambda region, order, total: total + Decimal(order["amount"]),
    name="region-revenue",
    value="decimal",
)


def settle(order: dict[str, Any], payment: dict[str, Any]) -> dict[str, Any]:
    """A PAID order next to the payment that settled it.

    >>> settle({"order_id": "o1", "amount": Decimal("2.50")}, {"payment_id": "p1"})
    {'order_id': 'o1', 'amount': '2.50', 'payment_id': 'p1'}
    """
    return {
        "order_id": order["order_id"],
        "amount": str(order["amount"]),
        "payment_id": payment["payment_id"],
    }


(
    orders.filter(lambda order_id, order: order["status"] == "PAID")
    .join(
        app.stream(payments),
        settle,
        window=streamflow.JoinWindows(before=3600, after=3600),
        name="settle",
    )
    .to(settled_orders)
)
