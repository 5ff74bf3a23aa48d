"""Testing a streamflow app without a broker: copy this file next to your app and adapt it.

Run it with ``pytest examples/test_quickstart.py``. Each test gets a fresh
``streamflow_driver`` (the fixture comes with streamflow) for the app that the
``streamflow_app`` fixture names; the driver runs the app's real operators, codecs and
tables in memory, so a test takes milliseconds.
"""

from decimal import Decimal

import pytest


@pytest.fixture
def streamflow_app():
    """The app under test: a file path, a ``module:attribute`` reference, or the App itself."""
    return "apps/user_spending.py"


def order(order_id, user_id, status, amount):
    """An order event as the app's Avro schema (schemas/order_event.avsc) wants it."""
    return {
        "order_id": order_id,
        "user_id": user_id,
        "status": status,
        "amount": Decimal(amount),
        "currency": "USD",
        "timestamp": 1_700_000_000_000,
    }


def test_paid_orders_add_up_per_user(streamflow_driver):
    streamflow_driver.pipe("order_events", "o1", order("o1", "alice", "PAID", "10.50"))
    streamflow_driver.pipe("order_events", "o2", order("o2", "alice", "CREATED", "99.00"))
    streamflow_driver.pipe("order_events", "o3", order("o3", "alice", "PAID", "4.25"))

    # Every update of the table went to the summary topic, as a decimal string.
    assert streamflow_driver.read("user_spending_summary") == [
        ("alice", "10.50"),
        ("alice", "14.75"),
    ]
    # The table holds the exact total.
    assert streamflow_driver.table("user-spending-store")["alice"] == Decimal("14.75")


def test_each_user_has_a_total_of_their_own(streamflow_driver):
    streamflow_driver.pipe_many(
        "order_events",
        [
            ("o1", order("o1", "alice", "PAID", "1.00")),
            ("o2", order("o2", "bob", "PAID", "2.00")),
            ("o3", order("o3", "alice", "PAID", "3.00")),
        ],
    )
    totals = dict(streamflow_driver.table("user-spending-store").items())
    assert totals == {"alice": Decimal("4.00"), "bob": Decimal("2.00")}


def test_a_record_that_does_not_decode_goes_to_the_dead_letter_topic(streamflow_driver):
    streamflow_driver.pipe_raw("order_events", b"o1", b"this is not Avro")

    (letter,) = streamflow_driver.dead_letters()
    assert letter.value == b"this is not Avro"  # the original bytes, kept for a replay
    assert letter.step == "decode"
    assert streamflow_driver.read("user_spending_summary") == []
