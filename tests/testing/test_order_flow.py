"""The order flow app (``apps/order_flow.py``) through the TestDriver: reservations that
never overdraw stock, payments, payment timeouts that cancel and release, redelivery."""

from __future__ import annotations

from collections import Counter

import pytest

from streamflow.testing import TestDriver

MINUTE = 60_000


@pytest.fixture
def driver(monkeypatch):
    monkeypatch.setenv("ORDER_FLOW_PAYMENT_TIMEOUT_MINUTES", "1")
    monkeypatch.setenv("ORDER_FLOW_PARTITIONS", "1")
    with TestDriver("apps/order_flow.py") as test_driver:
        yield test_driver


def order(driver, order_id, sku, quantity, at, user="u1"):
    value = {"order_id": order_id, "sku": sku, "quantity": quantity, "user_id": user}
    driver.pipe("orders", order_id, value, timestamp=at)


def terminal(statuses):
    return {k: v["status"] for k, v in statuses if v["status"] in ("REJECTED", "PAID", "CANCELLED")}


def test_orders_are_reserved_paid_rejected_or_cancelled_once(driver):
    driver.pipe("stock_changes", "apple", {"quantity": 5}, timestamp=0)
    driver.pipe("stock_changes", "pear", {"quantity": 1}, timestamp=0)
    order(driver, "o1", "apple", 2, 0)
    order(driver, "o2", "apple", 2, 1000)
    order(driver, "o3", "apple", 2, 2000)  # only 1 left
    order(driver, "o4", "pear", 1, 3000)
    order(driver, "o1", "apple", 2, 3500)  # redelivered: changes nothing
    driver.pipe("payments", "o1", {"status": "PAID"}, timestamp=10_000)
    first = driver.read("order_status")
    assert [(k, v["status"]) for k, v in first] == [
        ("o1", "RESERVED"),
        ("o2", "RESERVED"),
        ("o3", "REJECTED"),
        ("o4", "RESERVED"),
        ("o1", "PAID"),
    ]
    assert first[2][1]["reason"] == "only 1 of apple in stock"
    assert dict(driver.table("stock").items()) == {"apple": 1, "pear": 0}

    # o5 comes while o4 holds the last pear: rejected. A minute later o2 and o4 are
    # cancelled and their stock released.
    order(driver, "o5", "pear", 1, 20_000)
    driver.advance_time(61)
    later = driver.read("order_status")
    assert Counter((k, v["status"]) for k, v in later) == Counter(
        [("o5", "REJECTED"), ("o2", "CANCELLED"), ("o4", "CANCELLED")]
    )
    assert all(v["reason"] == "payment timeout" for k, v in later if v["status"] == "CANCELLED")
    assert dict(driver.table("stock").items()) == {"apple": 3, "pear": 1}
    assert dict(driver.table("reservations").items()) == {"o1": 2}
    assert len(driver.table("awaiting-payment")) == 0

    driver.pipe("payments", "o2", {"status": "PAID"}, timestamp=3 * MINUTE)  # too late
    driver.advance_time(120)
    assert driver.read("order_status") == []
    outcomes = terminal(first + later)
    assert outcomes == {
        "o1": "PAID",
        "o2": "CANCELLED",
        "o3": "REJECTED",
        "o4": "CANCELLED",
        "o5": "REJECTED",
    }
    notes = driver.read("notifications")
    assert sorted(v["order_id"] for _, v in notes) == sorted(outcomes)
    assert {v["message"] for _, v in notes} >= {"order o2: CANCELLED (payment timeout)"}


def test_a_paid_order_is_not_cancelled_when_its_timeout_passes(driver):
    driver.pipe("stock_changes", "apple", {"quantity": 1}, timestamp=0)
    order(driver, "o1", "apple", 1, 0)
    driver.pipe("payments", "o1", {"status": "PAID"}, timestamp=30_000)
    driver.pipe("payments", "o1", {"status": "PAID"}, timestamp=31_000)  # redelivered
    driver.advance_time(5 * 60)
    order(driver, "o2", "apple", 1, 5 * MINUTE)
    assert terminal(driver.read("order_status")) == {"o1": "PAID", "o2": "REJECTED"}
    assert driver.table("stock")["apple"] == 0


def test_payment_requests_are_charged_once_retried_when_unavailable_dead_lettered_when_refused(
    driver,
):
    driver.pipe("stock_changes", "apple", {"quantity": 10}, timestamp=0)
    for n, oid in enumerate(["o1", "o2", "o3"]):
        order(driver, oid, "apple", 1, n)

    def request(oid, card, amount="2.50"):
        driver.pipe("payment_requests", oid, {"order_id": oid, "amount": amount, "card": card})

    request("o1", "4242")
    request("o1", "4242")  # asked twice: charged once
    request("o2", "flaky-2")  # the gateway times out twice, then answers
    request("o3", "declined-insufficient-funds")
    assert [k for k, _ in driver.read("payments")] == ["o1"]
    driver.advance_time(2)  # first retry: still unavailable
    assert driver.read("payments") == []
    driver.advance_time(4)  # second retry: charged
    [(key, payment)] = driver.read("payments")
    assert key == "o2" and payment["payment_id"].startswith("pay-")
    assert set(dict(driver.table("charges").items())) == {"o1", "o2"}
    [letter] = driver.dead_letters()
    assert letter.step == "charge" and letter.error == "card declined for o3"
    assert b"declined-insufficient-funds" in letter.value
    driver.advance_time(61)  # o3 was never paid: its timeout cancels it
    assert terminal(driver.read("order_status")) == {
        "o1": "PAID",
        "o2": "PAID",
        "o3": "CANCELLED",
    }
    assert driver.table("stock")["apple"] == 8
