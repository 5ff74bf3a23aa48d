"""User spending with a flaky and a failing step, to exercise the error policies.

The aggregator raises ``TimeoutError`` the first time it sees an order whose amount ends
in 3 (a transient failure: a marker file remembers it), and ``ValueError`` for every
amount ending in 7 (a permanent one). ``FLAKY_POLICY`` picks the policy: ``retry``
(the default) or ``stop``. Failing records go to ``<app-id>-orders-dead-letters``.
"""

import os
from decimal import Decimal
from pathlib import Path

import streamflow

app = streamflow.App("flaky-spending")
markers = Path(os.environ.get("FLAKY_DIR", "state/flaky"))
policy = (
    streamflow.Stop()
    if os.environ.get("FLAKY_POLICY") == "stop"
    else streamflow.Retry(attempts=2, backoff=0.3)
)

order_events = app.topic(
    "order_events",
    key="str",
    value=streamflow.avro("order_event"),
    dead_letter_topic=f"{app.id}-orders-dead-letters",
)
summary = app.topic("user_spending_summary", key="str", value="str")


def add(user_id, order, total):
    amount = str(order["amount"])
    if amount.endswith("7"):
        raise ValueError(f"amount {amount} is rejected")
    if amount.endswith("3"):
        marker = markers / order["order_id"]
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            raise TimeoutError("pricing service timed out")
    return total + order["amount"]


(
    app.stream(order_events, on_error=policy)
    .filter(lambda order_id, order: order["status"] == "PAID")
    .group_by(lambda order_id, order: order["user_id"], name="orders-by-user")
    .aggregate(lambda: Decimal("0.00"), add, name="user-spending-store", value="decimal")
    .to_stream()
    .map_values(str)
    .to(summary)
)
