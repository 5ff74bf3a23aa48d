"""User spending: the Kafka Streams "user spending" topology, in streamflow.

orders (Avro) -> keep PAID -> re-key by user -> sum amounts into ``user-spending-store``
-> every update to ``user_spending_summary`` as a decimal string.

Run it:
    $ streamflow worker apps/user_spending.py
Query it:
    $ streamflow consume --app apps/user_spending.py user_spending_summary --from-beginning
"""

from decimal import Decimal

import streamflow

app = streamflow.App("user-spending")

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
user_spending_summary = app.topic("user_spending_summary", key="str", value="str")

spending = (
    app.stream(order_events)
    .filter(lambda order_id, order: order["status"] == "PAID")
    .group_by(lambda order_id, order: order["user_id"], name="orders-by-user")
    .aggregate(
        lambda: Decimal("0.00"),
        lambda user_id, order, total: total + order["amount"],
        name="user-spending-store",
        value="decimal",
    )
)

spending.to_stream().map_values(str).to(user_spending_summary)
