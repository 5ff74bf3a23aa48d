"""Error policies end to end: retry through retry topics, dead letters per topic, stop."""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import pytest

from tests.integration.support import AppRun, generate, increments, updates_by_user

pytestmark = pytest.mark.kafka

APP = "tests/integration/apps/flaky_spending.py"


def _flaky_run(broker, tmp_path, policy: str = "retry") -> AppRun:
    run = AppRun(broker, tmp_path / "state", app_path=APP)
    run.extra_env.update(FLAKY_DIR=str(tmp_path / "markers"), FLAKY_POLICY=policy)
    return run


def test_transient_failures_retry_and_permanent_ones_are_dead_lettered(broker, tmp_path):
    run = _flaky_run(broker, tmp_path)
    orders = generate(600, 20, seed=51)
    paid = [o for o in orders if o["status"] == "PAID"]
    rejected = [o for o in paid if o["amount"].endswith("7")]
    flaky = [o for o in paid if o["amount"].endswith("3")]
    accepted = [o for o in paid if not o["amount"].endswith("7")]
    assert rejected and flaky  # the seed gives both kinds
    run.produce_orders(orders)
    run.send_raw(run.orders_topic, b"not an order", key=b"garbage")
    dead_letter_topic = f"{run.app_id}-orders-dead-letters"

    worker = run.worker().start()
    try:
        records = run.wait_for_records(run.summary_topic, len(accepted))
        letters = run.wait_for_records(
            dead_letter_topic, len(rejected) + 1, key="bytes", value="bytes"
        )
        time.sleep(2)  # anything extra would show up now
        records = run.read(run.summary_topic)
        letters = run.read(dead_letter_topic, key="bytes", value="bytes")
    finally:
        assert worker.stop() == 0

    # Every accepted order counted exactly once, flaky ones included (after a retry).
    updates = updates_by_user(records)
    for user in {o["user_id"] for o in accepted}:
        amounts = sorted(Decimal(o["amount"]) for o in accepted if o["user_id"] == user)
        assert sorted(increments(updates[user])) == amounts, user
    assert len(records) == len(accepted)
    # Each rejected order dead-lettered once, after both retries, naming where it came from.
    by_step: dict[str, list[dict]] = {}
    for letter in letters:
        by_step.setdefault(letter["headers"]["streamflow.step"], []).append(letter)
    assert len(by_step["decode"]) == 1
    assert base64.b64decode(by_step["decode"][0]["value"]) == b"not an order"
    aggregated = by_step["user-spending-store"]
    assert len(aggregated) == len(rejected)
    repartition = f"{run.app_id}-orders-by-user-repartition"
    for letter in aggregated:
        headers = letter["headers"]
        assert headers["streamflow.exception"] == "builtins.ValueError"
        assert headers["streamflow.source.topic"] == repartition
        assert headers["streamflow.retry.attempt"] == "2"
    assert not run.read(f"{run.app_id}-dlq", key="bytes", value="bytes")


def test_stop_policy_stops_the_worker_without_committing_the_record(broker, tmp_path):
    run = _flaky_run(broker, tmp_path, policy="stop")
    orders = [o for o in generate(300, 10, seed=53) if o["status"] == "PAID"]
    assert any(o["amount"].endswith("7") for o in orders)
    run.produce_orders(orders)

    for _ in range(2):  # stopped again after a restart: the record was not skipped
        worker = run.worker().start()
        code = worker.process.wait(120)
        log = worker.log()
        assert code == 3, log[-3000:]
        assert "failed in step 'user-spending-store'" in log and "error policy is Stop" in log
        assert "Traceback" not in log.split("Stopping the worker:")[-1]
    assert not run.read(f"{run.app_id}-orders-dead-letters", key="bytes", value="bytes")
