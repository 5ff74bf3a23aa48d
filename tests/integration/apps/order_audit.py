"""A free-form agent: writes the id and status of every order it sees to a file."""

import os

import streamflow

app = streamflow.App("order-audit")
orders = app.topic("order_events", key="str", value=streamflow.avro("order_event"))


@app.agent(orders)
async def audit(stream):
    with open(os.environ["AUDIT_FILE"], "a") as out:
        async for order in stream:
            out.write(f"{order['order_id']} {order['status']} {order['amount']}\n")
            out.flush()
