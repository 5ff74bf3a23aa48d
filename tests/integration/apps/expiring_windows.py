"""Orders per user per minute, kept for three minutes of stream time (window retention)."""

import streamflow

app = streamflow.App("expiring-windows")
orders = app.topic("order_events", key="str", value=streamflow.avro("order_event"))

(
    app.stream(orders)
    .group_by(lambda order_id, order: order["user_id"], name="orders-by-user")
    .windowed_by(streamflow.tumbling(60, retention=180))
    .count(name="orders-per-minute")
)
