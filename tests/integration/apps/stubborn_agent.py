"""A free-form agent that refuses to be cancelled: the worker's graceful stop never ends."""

import asyncio

import streamflow

app = streamflow.App("stubborn-agent")
orders = app.topic("order_events", key="str", value=streamflow.avro("order_event"))


@app.agent(orders)
async def stubborn(stream):
    async for _order in stream:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue
