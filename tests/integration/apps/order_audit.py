"""An agent and two timers on a real worker.

``audit`` sends one audit line per order event, exactly once, and counts each order's
events in the ``audited`` store; ``heartbeat`` (on the leader) and ``alive`` (on every
worker) send a record every half second naming the worker process (one key: one partition,
so a reader sees both in the order they were sent).
"""

import os

import streamflow

app = streamflow.App("order-audit")
orders = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
audit_log = app.topic("order_audit", key="str", value="json")
heartbeats = app.topic("audit_heartbeats", key="str", value="json")
audited = app.table_store("audited", key="str", value="int", default=int)


@app.agent(orders, stores=[audited])
async def audit(stream):
    async for event in stream.events():
        order = event.value
        audited[event.key] += 1
        await audit_log.send(
            order["order_id"],
            {"status": order["status"], "amount": str(order["amount"]), "seen": audited[event.key]},
        )


@app.timer(0.5, on_leader=True)
async def heartbeat():
    await heartbeats.send("beat", {"from": "leader", "pid": os.getpid()})


@app.timer(0.5)
async def alive():
    await heartbeats.send("beat", {"from": "worker", "pid": os.getpid()})
