"""Counts orders per amount bucket (whole hundreds): a table with int keys."""

import streamflow

app = streamflow.App("order-buckets")
orders = app.topic("order_events", key="str", value=streamflow.avro("order_event"))

(
    app.stream(orders)
    .group_by(lambda order_id, order: int(order["amount"]) // 100, key="int", name="by-bucket")
    .count(name="orders-per-bucket")
)
