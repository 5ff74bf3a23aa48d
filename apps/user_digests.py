"""User digests: a processor with a store and debounced timers over the order events.

Each order event adds to its user's running activity in the ``user-activity`` store (how
many orders, the last one) and sets the user's timer ``USER_DIGESTS_QUIET_MS`` (default one
minute) after the event's time, replacing the previous one. When a user has been quiet
that long in stream time, the timer fires: one digest of the user's activity since the
last digest goes to ``user_digests`` and the activity starts over.

The order events are partitioned by user (as the seed's shop writes them), so a user's
events, store row and timer live in one partition without a repartition; the store is
keyed by user while the records are keyed by order id, so table views cannot route its
keys (the processor reads it, the views do not).

Every order also gets a wall-clock timer, ``ORDER_EXPIRY_MS`` (default one second) after it
is processed; when it fires, the order's expiry goes to ``order_expiries``: exactly one per
order, whatever crashes or rebalances happen meanwhile.

Run it:
    $ streamflow worker apps/user_digests.py
"""

from __future__ import annotations

import os
from typing import Any

import streamflow
from streamflow import ProcessorContext

app = streamflow.App("user-digests")
QUIET_MS = int(os.environ.get("USER_DIGESTS_QUIET_MS", "60000"))
EXPIRY_MS = int(os.environ.get("ORDER_EXPIRY_MS", "1000"))

order_events = app.topic("order_events", key="str", value=streamflow.avro("order_event"))
user_digests = app.topic("user_digests", key="str", value="json")
order_expiries = app.topic("order_expiries", key="str", value="json")
activity = app.table_store("user-activity", key="str", value="json")


def track(ctx: ProcessorContext, order_id: str, order: dict[str, Any]) -> None:
    """Count the order into its user's activity; (re)set the user's quiet timer.

    >>> from decimal import Decimal
    >>> from streamflow.testing import TestDriver
    >>> def event(order_id, user, t):
    ...     return {"order_id": order_id, "user_id": user, "status": "PAID",
    ...             "amount": Decimal("1.00"), "currency": "USD", "timestamp": t}
    >>> with TestDriver(app) as driver:
    ...     for order_id, user, t in [("o1", "u1", 0), ("o2", "u1", 1), ("o3", "u2", 60_005)]:
    ...         driver.pipe("order_events", order_id, event(order_id, user, t), timestamp=t,
    ...                     partition=0)
    ...     driver.read("user_digests")
    [('u1', {'orders': 2, 'last_order': 'o2', 'quiet_at': 60001})]
    """
    user = order["user_id"]
    seen = ctx.store("user-activity").get(user) or {"orders": 0}
    now = {"orders": seen["orders"] + 1, "last_order": order_id}
    ctx.store("user-activity")[user] = now
    ctx.schedule(user, ctx.timestamp + QUIET_MS, now["orders"])


def digest(ctx: ProcessorContext, user: str, orders: int) -> None:
    """The user has been quiet: send the digest and start over."""
    seen = ctx.store("user-activity")[user]
    del ctx.store("user-activity")[user]
    ctx.forward(user, {**seen, "quiet_at": ctx.timestamp})


app.stream(order_events).process(track, stores=[activity], on_timer=digest, name="digests").to(
    user_digests
)


def expire_later(ctx: ProcessorContext, order_id: str, order: dict[str, Any]) -> None:
    """Set the order's expiry timer on the wall clock."""
    ctx.schedule(order_id, ctx.wall_time + EXPIRY_MS, order["user_id"], clock="wall")


def expired(ctx: ProcessorContext, order_id: str, user_id: str) -> None:
    """The order's expiry: sent once."""
    ctx.forward(order_id, {"order_id": order_id, "user_id": user_id})


app.stream(order_events).process(expire_later, on_timer=expired, name="expiries").to(order_expiries)
