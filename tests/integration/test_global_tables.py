"""A global table on a real worker: restored before processing, kept current, joined by a
key taken from the record (no co-partitioning), on both brokers."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from tests.integration.support import AppRun

pytestmark = pytest.mark.kafka

APP = "tests/integration/apps/global_regions.py"


def test_orders_join_the_global_table_restored_at_start_and_kept_current(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path=APP)
    topics = {n: f"{n}-{run.run_id}" for n in ("regions", "orders", "named_orders")}
    run.extra_env.update({f"STREAMFLOW_TOPIC_{n.upper()}": t for n, t in topics.items()})
    names = {"eu": b"Europe", "us": b"Americas", "ap": b"Asia"}

    def orders(prefix: str, count: int) -> list[tuple[bytes, bytes, None]]:
        codes = ["eu", "us", "ap", "xx"]  # xx: not in the table
        return [
            (f"{prefix}{i}".encode(), orjson.dumps({"region": codes[i % 4]}), None)
            for i in range(count)
        ]

    run.send_records(topics["regions"], [(k.encode(), v, None) for k, v in names.items()])
    first = orders("a", 40)
    run.send_records(topics["orders"], first)
    worker = run.worker().start()
    try:
        run.wait_for_records(topics["named_orders"], len(first), value="json")
        # The table follows its topic while the worker runs: a rename and a deletion.
        run.send_records(topics["regions"], [(b"eu", b"Europa", None), (b"ap", None, None)])
        time.sleep(3)
        second = orders("b", 40)
        run.send_records(topics["orders"], second)
        run.wait_for_records(topics["named_orders"], len(first) + len(second), value="json")
        time.sleep(2)  # anything extra would show up now
        named = run.read(topics["named_orders"], value="json")
    finally:
        assert worker.stop() == 0
    assert Counter(r["key"] for r in named) == Counter(k.decode() for k, _, _ in first + second)
    got = {r["key"]: r["value"]["region_name"] for r in named}
    before = {"eu": "Europe", "us": "Americas", "ap": "Asia", "xx": None}
    after = {"eu": "Europa", "us": "Americas", "ap": None, "xx": None}
    codes = ["eu", "us", "ap", "xx"]
    assert got == {
        **{f"a{i}": before[codes[i % 4]] for i in range(40)},
        **{f"b{i}": after[codes[i % 4]] for i in range(40)},
    }
