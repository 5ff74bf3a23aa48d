"""The user-spending app end to end: real broker, real worker processes, real RocksDB."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest

from streamflow.client import Client
from tests.integration.support import (
    AppRun,
    check_summary,
    expected_totals,
    generate,
    read_table_files,
    wait_for_log,
)

pytestmark = pytest.mark.kafka

ORDERS = 3000
USERS = 50


def test_totals_exact_and_one_update_per_paid_order(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    orders = generate(ORDERS, USERS, seed=11)
    run.produce_orders(orders)
    paid = sum(1 for o in orders if o["status"] == "PAID")

    worker = run.worker().start()
    try:
        records = run.wait_for_records(run.summary_topic, paid)
        assert len(records) == paid, worker.log()[-3000:]
        check_summary(orders, records)
        changelog = run.read(f"{run.app_id}-user-spending-store-changelog", value="decimal")
        latest = {r["key"]: Decimal(r["value"]) for r in changelog}
        assert latest == expected_totals(orders)[0]
    finally:
        assert worker.stop() == 0
    # The table itself, read straight from the worker's RocksDB files.
    assert read_table_files(worker.table_dir) == expected_totals(orders)[0]
    assert not list(worker.table_dir.glob("*.dirty")), "a clean stop leaves no dirty partition"


def test_table_rebuilt_from_changelog_after_state_loss(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    first = generate(1000, 20, seed=21)
    run.produce_orders(first)
    paid_first = sum(1 for o in first if o["status"] == "PAID")
    worker = run.worker().start()
    try:
        assert len(run.wait_for_records(run.summary_topic, paid_first)) == paid_first
    finally:
        assert worker.stop() == 0

    shutil.rmtree(run.state_dir / run.app_id)
    second = generate(500, 20, seed=22)
    run.produce_orders(second)
    worker = run.worker().start()
    paid = paid_first + sum(1 for o in second if o["status"] == "PAID")
    try:
        records = run.wait_for_records(run.summary_topic, paid)
        assert len(records) == paid, worker.log()[-3000:]
        # New updates continue from the recovered totals: no reset to zero, no double count.
        check_summary(first + second, records)
    finally:
        assert worker.stop() == 0
    # Recovery ended at the changelogs' last committed records, not after faust's idle
    # timeouts for records past the transaction markers.
    assert "Aborted tx until highwater" not in worker.log()
    assert read_table_files(worker.table_dir) == expected_totals(first + second)[0]


def test_two_workers_share_partitions(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    orders = generate(ORDERS, USERS, seed=31)
    workers = []
    for _ in range(2):
        workers.append(run.worker().start())
        wait_for_log(workers[-1], "Worker ready")
    # The first worker rebalances when the second joins; produce once both hold partitions.
    wait_for_log(workers[0], "Worker ready", count=2)
    try:
        run.produce_orders(orders)
        paid = sum(1 for o in orders if o["status"] == "PAID")
        records = run.wait_for_records(run.summary_topic, paid, timeout=180)
        assert len(records) == paid, workers[0].log()[-3000:]
        check_summary(orders, records)
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0]
    held = [read_table_files(w.table_dir) for w in workers]
    assert all(held), "each worker held some table partitions"
    merged = {**held[0], **held[1]}
    assert merged == expected_totals(orders)[0]


def test_undecodable_record_goes_to_dead_letter_topic(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    orders = generate(200, 5, seed=41)
    run.produce_orders(orders)
    garbage = b"\xc3\x01not-an-order"
    run.send_raw(run.orders_topic, garbage, key=b"bad-order")
    worker = run.worker().start()
    try:
        paid = sum(1 for o in orders if o["status"] == "PAID")
        records = run.wait_for_records(run.summary_topic, paid)
        check_summary(orders, records)
        letters = run.wait_for_records(f"{run.app_id}-dlq", 1, key="bytes", value="bytes")
    finally:
        worker.stop()
    assert len(letters) == 1
    letter = letters[0]
    import base64

    assert base64.b64decode(letter["value"]) == garbage
    assert letter["headers"]["streamflow.step"] == "decode"
    assert letter["headers"]["streamflow.source.topic"] == run.orders_topic
    assert "DecodeError" in letter["headers"]["streamflow.exception"]


def test_an_agent_sends_exactly_once_and_timers_run_on_the_worker(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path="tests/integration/apps/order_audit.py")
    audit_topic, beats_topic = f"order_audit-{run.run_id}", f"audit_heartbeats-{run.run_id}"
    run.extra_env.update(
        STREAMFLOW_TOPIC_ORDER_AUDIT=audit_topic, STREAMFLOW_TOPIC_AUDIT_HEARTBEATS=beats_topic
    )
    orders = generate(300, 5, seed=51)
    run.produce_orders(orders)
    worker = run.worker().start()
    try:
        lines = run.wait_for_records(audit_topic, len(orders), timeout=90, value="json")
        # Heartbeats never pause: read a fixed number (in at most 30 s).
        beats = run.read(beats_topic, value="json", idle=30, max_records=8)
        counts = dict(Client(f"http://127.0.0.1:{worker.web_port}", retry_for=30).items("audited"))
    finally:
        assert worker.stop() == 0
    # One audit line per order event, in each order's own order, none twice.
    by_order: dict[str, list] = {}
    for line in lines:
        by_order.setdefault(line["key"], []).append(line["value"])
    expected: dict[str, list] = {}
    for o in orders:
        events = expected.setdefault(o["order_id"], [])
        events.append({"status": o["status"], "amount": o["amount"], "seen": len(events) + 1})
    assert by_order == expected
    assert counts == {order_id: len(events) for order_id, events in expected.items()}
    # Both timers ran on the one worker (the group's leader).
    assert len(beats) == 8 and {b["value"]["from"] for b in beats} == {"leader", "worker"}
    assert len({b["value"]["pid"] for b in beats}) == 1
