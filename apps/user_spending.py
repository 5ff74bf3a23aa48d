"""User spending: the Kafka Streams "user spending" topology, in streamflow.

orders (Avro) -> keep PAID -> re-key by user -> sum amounts into ``user-spending-store``
-> every update to ``user_spending_summary`` as a decimal string.

Run it:
    $ streamflow worker apps/user_spending.py
Query it:
    $ streamflow table get apps/user_spending.py user-spending-store user-007
    $ curl http://127.0.0.1:6066/views/top-spenders?n=5
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


@app.view("top-spenders")
async def top_spenders(request, tables):
    """The ``n`` users who spent the most (``?n=10`` by default)."""
    n = int(request.query.get("n", 10))
    totals = [(total, user) async for user, total in tables["user-spending-store"].items()]
    return [{"user_id": user, "total": total} for total, user in sorted(totals, reverse=True)[:n]]
