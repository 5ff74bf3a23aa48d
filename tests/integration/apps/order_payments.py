"""Orders and their payments: a windowed stream-stream left join.

An order is paid when a payment of the same order id arrives within 60 s after it; once
that window has closed an unpaid order is reported unpaid, exactly once. Records may arrive
up to 30 s out of order (the grace period).
"""

import streamflow

app = streamflow.App("order-payments")
orders = app.topic("orders", key="str", value="json")
payments = app.topic("payments", key="str", value="json")
order_status = app.topic("order_status", key="str", value="json")

(
    app.stream(orders)
    .left_join(
        app.stream(payments),
        lambda order, payment: {"order": order["n"], "paid": payment is not None},
        window=streamflow.JoinWindows(before=0, after=60, grace=30),
        name="status",
    )
    .to(order_status)
)
