"""Which fetched records a batch may process: none twice, none from a stale assignment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from streamflow import App
from streamflow.runtime.engine import Fetched, Runtime
from streamflow.runtime.settings import WorkerSettings

TP = TopicPartition("orders", 7)


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> Runtime:
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    app = App("app")
    app.stream("orders").to("out")
    runtime = Runtime(app, WorkerSettings.resolve(broker="127.0.0.1:1"))
    runtime.faust = SimpleNamespace(
        consumer_generation_id=2, consumer=SimpleNamespace(assignment=lambda: {TP})
    )
    return runtime


def _fetch(runtime: Runtime, first: int, last: int, generation: int | None = None) -> Fetched:
    records = [
        SimpleNamespace(key=b"k", value=b"v", timestamp=0, offset=o, headers=())
        for o in range(first, last + 1)
    ]
    return Fetched(
        runtime.faust.consumer_generation_id if generation is None else generation, TP, records
    )


def _offsets(runtime: Runtime, *fetched: Fetched) -> list[int]:
    return [r.offset for r in runtime._fresh_records(list(fetched)).get(TP.partition, [])]


def test_records_fetched_again_after_a_seek_are_taken_once(runtime):
    # After a rebalance the partition is sought back and what waited is fetched again.
    assert _offsets(runtime, _fetch(runtime, 10, 14), _fetch(runtime, 10, 16)) == list(
        range(10, 17)
    )


def test_records_already_processed_are_left_out(runtime):
    runtime._next_offsets[TP] = 13
    assert _offsets(runtime, _fetch(runtime, 10, 15)) == [13, 14, 15]


def test_a_fetch_of_an_earlier_generation_is_left_out(runtime):
    stale = _fetch(runtime, 10, 14)
    runtime.faust.consumer_generation_id += 1  # a rebalance meanwhile
    assert _offsets(runtime, stale, _fetch(runtime, 20, 21)) == [20, 21]


def test_partitions_no_longer_assigned_are_left_out(runtime):
    runtime.faust.consumer = SimpleNamespace(assignment=lambda: set())
    assert _offsets(runtime, _fetch(runtime, 10, 14)) == []
