"""Spending per user per minute (tumbling windows) and per 2 minutes every minute (hopping)."""

from decimal import Decimal

import streamflow

app = streamflow.App("spending-per-minute")
orders = app.topic("order_events", key="str", value=streamflow.avro("order_event"))

by_user = (
    app.stream(orders)
    .filter(lambda order_id, order: order["status"] == "PAID")
    .group_by(lambda order_id, order: order["user_id"], name="paid-by-user")
)
by_user.windowed_by(streamflow.tumbling(60, grace=3600)).aggregate(
    lambda: Decimal("0.00"),
    lambda user, order, total: total + order["amount"],
    name="spending-per-minute",
    value="decimal",
)
by_user.windowed_by(streamflow.hopping(120, advance=60, grace=3600)).count(
    name="orders-per-two-minutes"
)
