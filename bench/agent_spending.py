"""The user-spending job written with agents, for ``bench/user_spending.py`` (system
``streamflow-agent``): the shape of the faust baseline (one agent re-keys PAID orders by
user into a topic, a second sums them in a store and sends each new total), with
streamflow's exactly-once sends and RocksDB store.

    streamflow worker bench/agent_spending.py
"""

from __future__ import annotations

from decimal import Decimal

import streamflow

app = streamflow.App("user-spending")

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
paid_by_user = app.topic(f"{app.id}-paid-by-user", key="str", value=streamflow.avro("order_event"))
user_spending_summary = app.topic("user_spending_summary", key="str", value="str")
totals = app.table_store("user-spending-store", key="str", value="decimal", default=Decimal)


@app.agent(order_events)
async def paid_orders(stream):
    """PAID orders, re-keyed by user."""
    async for order in stream:
        if order["status"] == "PAID":
            await paid_by_user.send(order["user_id"], order)


@app.agent(paid_by_user, stores=[totals], sink=user_spending_summary)
async def spending(stream):
    """Each user's running total of PAID amounts.

    >>> from streamflow.testing import TestDriver
    >>> event = {"order_id": "o1", "user_id": "u1", "status": "PAID",
    ...          "amount": Decimal("2.50"), "currency": "USD", "timestamp": 0}
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("order_events", "o1", event)
    ...     driver.pipe("order_events", "o2", {**event, "order_id": "o2", "status": "CREATED"})
    ...     driver.pipe("order_events", "o3", {**event, "order_id": "o3"})
    ...     driver.read("user_spending_summary")
    [('u1', '2.50'), ('u1', '5.00')]
    """
    async for user_id, order in stream.items():
        totals[user_id] += order["amount"]
        yield user_id, str(totals[user_id])
