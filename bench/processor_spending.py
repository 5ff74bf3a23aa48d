"""The user-spending job written with the processor API, for ``bench/user_spending.py``
(system ``streamflow-processor``): the same topics, codecs and outputs as
``apps/user_spending.py``, the sum kept in a ``table_store`` by a ``stream.process`` step
instead of ``aggregate``.

    streamflow worker bench/processor_spending.py
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import streamflow
from streamflow import ProcessorContext

app = streamflow.App("user-spending")

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
user_spending_summary = app.topic("user_spending_summary", key="str", value="str")
totals = app.table_store("user-spending-store", key="str", value="decimal", default=Decimal)


def add_amount(ctx: ProcessorContext, user_id: str, order: dict[str, Any]) -> None:
    """Add a PAID order's amount to its user's total and send the new total on.

    >>> from streamflow.testing import TestDriver
    >>> event = {"order_id": "o1", "user_id": "u1", "status": "PAID",
    ...          "amount": Decimal("2.50"), "currency": "USD", "timestamp": 0}
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("order_events", "o1", event)
    ...     driver.pipe("order_events", "o2", {**event, "order_id": "o2"})
    ...     driver.read("user_spending_summary")
    [('u1', '2.50'), ('u1', '5.00')]
    """
    total = ctx.store("user-spending-store")[user_id] + order["amount"]
    ctx.store("user-spending-store")[user_id] = total
    ctx.forward(user_id, str(total))


(
    app.stream(order_events)
    .filter(lambda order_id, order: order["status"] == "PAID")
    .select_key(lambda order_id, order: order["user_id"])
    .process(add_amount, stores=[totals], name="orders-by-user")
    .to(user_spending_summary)
)
