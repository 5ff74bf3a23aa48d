"""A worker whose runtime crashes exits (to be restarted) instead of idling forever; a
worker whose graceful stop hangs exits anyway once its stop timeout passes."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from streamflow.runtime.worker import STOP_FORCED
from tests.integration.support import AppRun, generate, wait_for_log

pytestmark = pytest.mark.kafka


async def _fence(broker: str, transactional_ids: list[str]) -> None:
    """Take over these transactional ids, as a new owner of their partitions would."""
    for transactional_id in transactional_ids:
        producer = AIOKafkaProducer(bootstrap_servers=broker, transactional_id=transactional_id)
        await producer.start()
        await producer.stop()


def test_a_fenced_worker_exits_with_the_crash_code(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    run.produce_orders(generate(200, 5, seed=71))
    worker = run.worker().start()
    try:
        wait_for_log(worker, "Worker ready")
        ids = [f"{run.app_id}-{group}-{p}" for group in range(3) for p in range(8)]
        asyncio.run(_fence(broker, ids))
        run.produce_orders(generate(200, 5, seed=72))
        code = worker.process.wait(120)
    finally:
        if worker.process.poll() is None:
            worker.kill()
    log = worker.log()
    assert code == 4, log[-3000:]
    assert "ProducerFenced" in log and "start it again" in log
    assert "did not stop within" not in log, "the crashed worker hung in its shutdown"


def test_a_worker_whose_stop_hangs_exits_after_the_stop_timeout(broker, tmp_path):
    run = AppRun(
        broker,
        tmp_path / "state",
        app_path="tests/integration/apps/stubborn_agent.py",
        extra_env={"STREAMFLOW_STOP_TIMEOUT": "5"},
    )
    run.produce_orders(generate(5, 1, seed=73))
    worker = run.worker().start()
    try:
        wait_for_log(worker, "Worker ready")
        time.sleep(2)  # the agent has its order and sleeps, ignoring cancellation
        started = time.monotonic()
        code = worker.stop(timeout=60)
        took = time.monotonic() - started
    finally:
        if worker.process.poll() is None:
            worker.kill()
    log = worker.log()
    assert code == STOP_FORCED, log[-3000:]
    assert "did not stop within 5s" in log and "stopped forcibly" in log
    assert took < 30, f"the stop took {took:.0f}s"
