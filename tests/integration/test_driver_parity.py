"""The test driver and a real worker agree: the same input gives the same outputs and tables.

Each case sends the same bytes (same keys, values and timestamps) to a worker process on the
embedded broker and to a :class:`~streamflow.testing.TestDriver`, then compares what both
wrote and what their tables hold. Outputs are compared per key in a form that does not depend
on how records of different source partitions interleave (a worker processes a fetch a
partition at a time; the driver processes in write order): the amounts each key's running
totals added, or the orders each update names.
"""

from __future__ import annotations

import base64
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from streamflow.cli.loader import load_app
from streamflow.state import files as state_files
from streamflow.testing import TestDriver
from tests.integration.support import AppRun, generate, increments

pytestmark = pytest.mark.kafka

MINUTE = 60_000
PerKey = dict[Any, list[Any]]


def running_totals(values: list[Any]) -> tuple[list[Decimal], Decimal]:
    """What a key's running totals added, in any order, and where they ended."""
    totals = [Decimal(v) for v in values]
    return sorted(increments(totals)), totals[-1]


def named_orders(values: list[dict]) -> tuple[list[str], list[int]]:
    """The orders a key's updates name, and their counts, in any order."""
    return sorted(v["last_order"] for v in values), sorted(v["count"] for v in values)


def counts_and_totals(table: dict) -> dict:
    """A table of order-pipeline aggregates without its order-dependent last_* fields."""
    return {k: (v["count"], v["total"]) for k, v in table.items()}


@dataclass
class Case:
    app_path: str
    #: Output topic (as the app names it) -> how its per-key values are compared.
    outputs: dict[str, Callable[[list[Any]], Any]]
    tables: list[str]
    orders: list[dict]
    #: Order index -> record timestamp (default: a fixed clock, one ms apart).
    timestamp: Callable[[int], int] = lambda i: 1_700_000_000_000 + i
    #: Table name -> how a table is compared (default: as it is).
    table_view: dict[str, Callable[[dict], Any]] = field(default_factory=dict)
    garbage: bool = False
    env: dict[str, str] = field(default_factory=dict)


def _cases() -> dict[str, Case]:
    base = (int(time.time() * 1000) // MINUTE - 10) * MINUTE
    return {
        "user-spending": Case(
            "apps/user_spending.py",
            {"user_spending_summary": running_totals},
            ["user-spending-store"],
            generate(1500, 30, seed=71),
            garbage=True,
        ),
        "order-pipeline": Case(
            "apps/order_pipeline.py",
            {"user_totals": named_orders, "region_totals": named_orders},
            ["user-totals", "region-totals"],
            generate(1200, 25, seed=72),
            table_view={"user-totals": counts_and_totals, "region-totals": counts_and_totals},
        ),
        "windowed-counts": Case(
            "tests/integration/apps/spending_per_minute.py",
            {},
            ["spending-per-minute", "orders-per-two-minutes"],
            generate(600, 8, seed=73),
            timestamp=lambda i: base + (i % 5) * MINUTE + i,
        ),
        "retries-and-dead-letters": Case(
            "tests/integration/apps/flaky_spending.py",
            {"user_spending_summary": running_totals},
            ["user-spending-store"],
            generate(500, 20, seed=74),
            garbage=True,
        ),
    }


CASES = _cases()


def _per_key(records: list[tuple[Any, Any]]) -> PerKey:
    out: PerKey = defaultdict(list)
    for key, value in records:
        out[key].append(value)
    return dict(out)


def _input_records(case: Case, driver: TestDriver) -> list[tuple[bytes, bytes, int]]:
    codec = driver.app.topics["order_events"].value_codec
    records = [
        (o["order_id"].encode(), codec.encode(codec.from_json(o)), case.timestamp(i))
        for i, o in enumerate(case.orders)
    ]
    if case.garbage:
        records.insert(len(records) // 2, (b"garbage", b"not an order", case.timestamp(0)))
    return records


def _letters(items: list[tuple[bytes | None, bytes | None, str, str | None]]) -> Counter:
    return Counter(items)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_driver_and_a_worker_agree(name, embedded_bootstrap, tmp_path, monkeypatch):
    case = CASES[name]
    worker_run = AppRun(embedded_bootstrap, tmp_path / "state", app_path=case.app_path)
    topics = {t: f"{t}-{worker_run.run_id}" for t in ("user_totals", "region_totals")}
    worker_run.extra_env.update(
        FLAKY_DIR=str(tmp_path / "worker-markers"),
        **{f"STREAMFLOW_TOPIC_{t.upper()}": real for t, real in topics.items()},
    )
    monkeypatch.setenv("FLAKY_DIR", str(tmp_path / "driver-markers"))
    monkeypatch.delenv("FLAKY_POLICY", raising=False)

    with TestDriver(load_app(case.app_path), start_time=time.time()) as driver:
        records = _input_records(case, driver)
        for key, value, timestamp in records:
            driver.pipe_raw("order_events", key, value, timestamp=timestamp)
        driver.advance_time(60)  # every retry is due
        driver_outputs = {
            topic: _per_key(
                [
                    (
                        driver.app.topics[topic].key_codec.to_json(k),
                        driver.app.topics[topic].value_codec.to_json(v),
                    )
                    for k, v in driver.read(topic)
                ]
            )
            for topic in case.outputs
        }
        driver_tables = {t: dict(driver.table(t).items()) for t in case.tables}
        driver_letters = _letters(
            [
                (
                    d.key,
                    d.value,
                    d.step,
                    dict(d.headers).get("streamflow.retry.attempt", b"").decode(),
                )
                for d in driver.dead_letters()
            ]
        )
        codecs = {n.store: (n.key_codec, n.value_codec) for n in driver.topology.stores}
        app = driver.app
        dead_letter_topics = [app.dead_letter_topic] + [
            s.dead_letter_topic for s in driver.topology.subtopologies if s.dead_letter_topic
        ]
        expected_outputs = sum(len(v) for out in driver_outputs.values() for v in out.values())

    worker_run.send_records(worker_run.orders_topic, records)
    worker = worker_run.worker().start()
    try:
        real_topic = {
            "user_spending_summary": worker_run.summary_topic,
            **topics,
        }
        for topic in case.outputs:
            wanted = sum(len(v) for v in driver_outputs[topic].values())
            worker_run.wait_for_records(real_topic[topic], wanted)
        letters_wanted = sum(driver_letters.values())
        worker_dlqs = [t.replace(app.id, worker_run.app_id, 1) for t in set(dead_letter_topics)]
        if letters_wanted:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                got = sum(len(worker_run.read(t, key="bytes", value="bytes")) for t in worker_dlqs)
                if got >= letters_wanted:
                    break
                time.sleep(1)
        time.sleep(2)  # anything extra would show up now
        worker_outputs = {}
        for topic in case.outputs:
            declared = app.topics[topic]
            rows = worker_run.read(
                real_topic[topic], key=declared.key_codec, value=declared.value_codec
            )
            worker_outputs[topic] = _per_key([(r["key"], r["value"]) for r in rows])
        worker_letters = _letters(
            [
                (
                    None if r["key"] is None else base64.b64decode(r["key"]),
                    base64.b64decode(r["value"]),
                    r["headers"]["streamflow.step"],
                    r["headers"].get("streamflow.retry.attempt", ""),
                )
                for t in worker_dlqs
                for r in worker_run.read(t, key="bytes", value="bytes")
            ]
        )
    finally:
        assert worker.stop() == 0
    worker_tables = {
        t: state_files.read_table_files(worker.table_dir, t, *codecs[t]) for t in case.tables
    }

    assert expected_outputs or case.tables, "the case must produce something to compare"
    for topic, compare in case.outputs.items():
        ours, theirs = driver_outputs[topic], worker_outputs[topic]
        assert set(ours) == set(theirs), topic
        for key in ours:
            assert compare(ours[key]) == compare(theirs[key]), (topic, key)
    for table in case.tables:
        view = case.table_view.get(table, lambda t: t)
        assert driver_tables[table], table
        assert view(driver_tables[table]) == view(worker_tables[table]), table
    assert driver_letters == worker_letters
    if case.garbage:
        assert (b"garbage", b"not an order", "decode", "") in driver_letters
