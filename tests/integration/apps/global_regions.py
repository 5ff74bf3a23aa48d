"""Orders enriched from a global table of regions (its topic is not co-partitioned)."""

import streamflow

app = streamflow.App("global-regions")
regions = app.global_table(app.topic("regions", value="str", partitions=3), name="regions")
orders = app.topic("orders", key="str", value="json")
named = app.topic("named_orders", key="str", value="json")

app.stream(orders).left_join(
    regions,
    lambda order_id, order: order["region"],
    lambda order, region_name: {**order, "region_name": region_name},
).to(named)
