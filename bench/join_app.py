"""The stream-table join that ``bench/joins.py`` measures: orders enriched with customers.

orders (Avro, keyed by order id) -> keep PAID -> re-key by user (a repartition) -> join with
the ``customers`` table (read from its topic) -> ``enriched_orders`` (JSON).

    streamflow worker bench/join_app.py
"""

from __future__ import annotations

import streamflow
from apps.order_enrichment import enrich  # the same enrichment as the app

app = streamflow.App("bench-join")

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
customer_profiles = app.topic("customers", key="str", value="json")
enriched_orders = app.topic("enriched_orders", key="str", value="json")


customers = app.table_of(customer_profiles, name="customers")
(
    app.stream(order_events)
    .filter(lambda order_id, order: order["status"] == "PAID")
    .select_key(lambda order_id, order: order["user_id"])
    .join(customers, enrich, name="enrich")
    .to(enriched_orders)
)
