"""Order flow: inventory reservation, payment with a timeout, and notifications, written
with processors (``stream.process``), stores and timers.

1. **Inventory** (by SKU): each order reserves its quantity from the ``stock`` store, or is
   ``REJECTED`` with the reason when the stock is short (stock never goes negative);
   ``stock_changes`` restock; releases of cancelled orders give their quantity back. The
   ``reservations`` store remembers what each order took, so a redelivered order or
   release changes nothing twice.
2. **Charging** (an agent, by order id): each ``payment_requests`` record is charged
   through the payment gateway once (the ``charges`` store remembers it, so a repeated
   request charges nothing twice), and the confirmed payment is sent to ``payments``.
   A gateway that is unavailable (``PaymentUnavailable``) is retried with backoff,
   ``ORDER_FLOW_PAYMENT_RETRY_SECONDS`` (default 2) then doubling, three times; a request
   the gateway refuses (``PaymentRefused``: card declined, bad amount) is dead-lettered
   with its original bytes and the reason.
3. **Payment** (by order id): a ``RESERVED`` order waits in ``awaiting-payment`` with a
   wall-clock timer ``ORDER_FLOW_PAYMENT_TIMEOUT_MINUTES`` (default 30) from when it was
   reserved; a ``PAID`` payment cancels the timer and settles it; a timer that fires
   cancels the order (``CANCELLED``, "payment timeout") and releases its stock.
4. Every status goes to ``order_status``; terminal ones (``REJECTED``, ``PAID``,
   ``CANCELLED``) also become ``notifications`` for the user.

Timers are durable: a timeout set before a crash or a rebalance fires once, on the worker
that owns the order's partition then.

Run it:
    $ streamflow worker apps/order_flow.py
Feed it:
    $ echo '{"sku": "apple", "quantity": 10}' | \\
        streamflow produce --app apps/order_flow.py stock_changes --key sku
    $ echo '{"order_id": "o1", "sku": "apple", "quantity": 2, "user_id": "u1"}' | \\
        streamflow produce --app apps/order_flow.py orders --key order_id
    $ echo '{"order_id": "o1", "amount": "3.20", "card": "4242"}' | \\
        streamflow produce --app apps/order_flow.py payment_requests --key order_id
Query it:
    $ streamflow table get apps/order_flow.py stock apple
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal, InvalidOperation
from typing import Any

import streamflow
from streamflow import ProcessorContext, Retry

app = streamflow.App("order-flow", partitions=int(os.environ.get("ORDER_FLOW_PARTITIONS", "4")))
PAYMENT_TIMEOUT_MS = int(float(os.environ.get("ORDER_FLOW_PAYMENT_TIMEOUT_MINUTES", "30")) * 60_000)

orders = app.topic("orders", key="str", value="json")
stock_changes = app.topic("stock_changes", key="str", value="json")
payment_requests = app.topic("payment_requests", key="str", value="json")
payments = app.topic("payments", key="str", value="json")
stock_releases = app.topic("stock_releases", key="str", value="json")
order_status = app.topic("order_status", key="str", value="json")
notifications = app.topic("notifications", key="str", value="json")

stock = app.table_store("stock", key="str", value="int", default=int)
reservations = app.table_store("reservations", key="str", value="int")
awaiting_payment = app.table_store("awaiting-payment", key="str", value="json")
charges = app.table_store("charges", key="str", value="json")
PAYMENT_RETRY_SECONDS = float(os.environ.get("ORDER_FLOW_PAYMENT_RETRY_SECONDS", "2"))

TERMINAL = ("REJECTED", "PAID", "CANCELLED")


def reserve(ctx: ProcessorContext, sku: str, event: dict[str, Any]) -> None:
    """Inventory for one SKU: orders reserve, restocks add, releases give back.

    >>> from streamflow.testing import TestDriver
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("stock_changes", "apple", {"quantity": 3})
    ...     driver.pipe("orders", "o1", {"order_id": "o1", "sku": "apple", "quantity": 2,
    ...                                  "user_id": "u1"})
    ...     driver.pipe("orders", "o2", {"order_id": "o2", "sku": "apple", "quantity": 2,
    ...                                  "user_id": "u2"})
    ...     [(k, v["status"]) for k, v in driver.read("order_status")]
    [('o1', 'RESERVED'), ('o2', 'REJECTED')]
    """
    level = ctx.store("stock")[sku]
    taken = ctx.store("reservations")
    kind = event.get("type", "restock")
    if kind == "order":
        order_id, quantity = event["order_id"], int(event["quantity"])
        if order_id in taken:
            return  # redelivered: reserved already
        if quantity > level:
            ctx.forward(
                order_id,
                {**event, "status": "REJECTED", "reason": f"only {level} of {sku} in stock"},
            )
            return
        ctx.store("stock")[sku] = level - quantity
        taken[order_id] = quantity
        ctx.forward(order_id, {**event, "status": "RESERVED"})
    elif kind == "release":
        quantity = taken.get(event["order_id"])
        if quantity is not None:  # released once only
            ctx.store("stock")[sku] = level + quantity
            del taken[event["order_id"]]
    else:
        ctx.store("stock")[sku] = level + int(event["quantity"])


class PaymentUnavailable(Exception):
    """The gateway could not answer now (a timeout, an outage): worth trying again."""


class PaymentRefused(Exception):
    """The gateway refused the payment for good (declined card, bad amount)."""


def charge_card(request: dict[str, Any], attempt: int) -> str:
    """The payment gateway: charge ``request`` and return the payment's id.

    This one is a simulation, deterministic so runs can be checked: a card ``declined-...``
    is refused, a card ``flaky-N`` is unavailable for the first ``N`` attempts (``attempt``
    counts retries, 0 first), an amount that is not positive is refused; anything else is
    charged. The id is derived from the order, as a real gateway's idempotency key would.

    >>> charge_card({"order_id": "o1", "amount": "3.20", "card": "4242"}, 0).startswith("pay-")
    True
    >>> try:
    ...     charge_card({"order_id": "o1", "amount": "3.20", "card": "flaky-1"}, 0)
    ... except PaymentUnavailable as error:
    ...     print(error)
    gateway timeout charging o1 (attempt 0)
    """
    card = str(request.get("card", ""))
    order_id = request["order_id"]
    if card.startswith("declined"):
        raise PaymentRefused(f"card declined for {order_id}")
    if card.startswith("flaky-") and attempt < int(card.removeprefix("flaky-") or 1):
        raise PaymentUnavailable(f"gateway timeout charging {order_id} (attempt {attempt})")
    try:
        amount = Decimal(str(request["amount"]))
    except (KeyError, InvalidOperation):
        raise PaymentRefused(f"no valid amount for {order_id}: {request.get('amount')!r}") from None
    if amount <= 0:
        raise PaymentRefused(f"amount {amount} of {order_id} is not positive")
    return "pay-" + hashlib.blake2b(order_id.encode(), digest_size=6).hexdigest()


@app.agent(
    payment_requests,
    stores=[charges],
    on_error=Retry(attempts=3, backoff=PAYMENT_RETRY_SECONDS, retry_on=(PaymentUnavailable,)),
)
async def charge(stream):
    """Charge each payment request once; confirmed payments go to ``payments``.

    >>> from streamflow.testing import TestDriver
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("payment_requests", "o1", {"order_id": "o1", "amount": "5", "card": "42"})
    ...     driver.pipe("payment_requests", "o1", {"order_id": "o1", "amount": "5", "card": "42"})
    ...     [(k, v["status"]) for k, v in driver.read("payments")]
    [('o1', 'PAID')]
    """
    async for event in stream.events():
        order_id, request = event.key, event.value
        if order_id in charges:
            continue  # charged already: a repeated request
        payment_id = charge_card(request, event.retry_attempt)
        charges[order_id] = {"payment_id": payment_id, "amount": str(request["amount"])}
        await payments.send(
            order_id, {"status": "PAID", "payment_id": payment_id, "amount": request["amount"]}
        )


def settle(ctx: ProcessorContext, order_id: str, event: dict[str, Any]) -> None:
    """Payment for one order: wait for it after the reservation, settle it when it comes."""
    waiting = ctx.store("awaiting-payment")
    status = event.get("status")
    if status == "RESERVED":
        if order_id not in waiting:
            waiting[order_id] = event
            ctx.schedule(order_id, ctx.wall_time + PAYMENT_TIMEOUT_MS, event, clock="wall")
    elif status == "PAID" and order_id in waiting:
        order = waiting[order_id]
        del waiting[order_id]
        ctx.cancel(order_id)
        ctx.forward(order_id, {**order, "status": "PAID"})


def payment_timeout(ctx: ProcessorContext, order_id: str, order: dict[str, Any]) -> None:
    """No payment in time: cancel the order (its stock is released downstream)."""
    del ctx.store("awaiting-payment")[order_id]
    ctx.forward(order_id, {**order, "status": "CANCELLED", "reason": "payment timeout"})


def notification(order_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """What the user is told about a finished order.

    >>> notification("o1", {"user_id": "u1", "status": "PAID"})
    {'user_id': 'u1', 'order_id': 'o1', 'message': 'order o1: PAID'}
    """
    reason = f" ({event['reason']})" if event.get("reason") else ""
    return {
        "user_id": event["user_id"],
        "order_id": order_id,
        "message": f"order {order_id}: {event['status']}{reason}",
    }


inventory_input = (
    app.stream(orders)
    .map(lambda order_id, order: (order["sku"], {**order, "type": "order"}))
    .merge(app.stream(stock_changes))
    .merge(app.stream(stock_releases))
)
reserved_or_rejected = inventory_input.process(
    reserve, stores=[stock, reservations], name="inventory"
)
settled = reserved_or_rejected.merge(app.stream(payments)).process(
    settle, stores=[awaiting_payment], on_timer=payment_timeout, name="payment"
)
statuses = reserved_or_rejected.merge(settled)
statuses.to(order_status)
(
    statuses.filter(lambda order_id, event: event["status"] in TERMINAL)
    .map(lambda order_id, event: (event["user_id"], notification(order_id, event)))
    .to(notifications)
)
(
    settled.filter(lambda order_id, event: event["status"] == "CANCELLED")
    .map(lambda order_id, event: (event["sku"], {"type": "release", "order_id": order_id}))
    .to(stock_releases)
)
