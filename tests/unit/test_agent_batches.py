"""Agents over batches of several records, as a worker processes them (the test driver
commits each record on its own): each record sees the store writes of the ones before it,
and outputs keep the records' order."""

import asyncio

from streamflow import App
from streamflow.runtime.failures import FailureRouter
from streamflow.runtime.metrics import WorkerMetrics
from streamflow.runtime.tasks import ConsumedRecord, SubtopologyTask, TableRuntime
from streamflow.state.memory import MemoryStore
from streamflow.testing.topics import MemorySender, MemoryTopics


def run_batch(app: App, records: list[tuple[str, bytes]]) -> tuple[MemoryTopics, dict]:
    topology = app.topology()
    tables = {
        node.store: TableRuntime(node, lambda s=MemoryStore(): s, f"{node.store}-cl", 1)
        for node in topology.stores
    }
    [sub] = topology.subtopologies
    task = SubtopologyTask(sub, tables, FailureRouter(app.id, sub, "dlq", WorkerMetrics(app.id)))
    topics = MemoryTopics(1)
    consumed = [
        ConsumedRecord(key.encode(), value, 1000 + n, n) for n, (key, value) in enumerate(records)
    ]

    async def process() -> None:
        sender = MemorySender(topics)
        await task.process(0, consumed, sender)
        await sender.flush()
        await task.close()

    asyncio.run(process())
    return topics, tables


def test_a_record_sees_what_the_records_before_it_in_the_batch_wrote():
    app = App("charges", partitions=1)
    charged = app.table_store("charged", value="int")
    payments = app.topic("payments", value="json")

    @app.agent(app.topic("requests", partitions=1), stores=[charged])
    async def charge(stream):
        async for order_id, request in stream.items():
            if order_id in charged:
                continue
            charged[order_id] = request["amount"]
            await payments.send(order_id, request)

    topics, _tables = run_batch(
        app,
        [
            ("o1", b'{"amount": 1}'),
            ("o1", b'{"amount": 1}'),
            ("o2", b'{"amount": 2}'),
            ("o1", b'{"amount": 1}'),
        ],
    )
    assert [r.key for r in topics.get("payments").log] == [b"o1", b"o2"]
    assert [r.key for r in topics.get("charged-cl").log] == [b"o1", b"o2"]


def test_outputs_keep_the_record_order_whatever_the_concurrency():
    app = App("ordered", partitions=1)
    out = app.topic("out", value="str")

    @app.agent(app.topic("in", value="str", partitions=1), concurrency=4)
    async def jitter(stream):
        async for value in stream:
            await asyncio.sleep((int(value) % 3) / 1000)  # later records may finish first
            await out.send("k", value)

    topics, _ = run_batch(app, [("k", str(n).encode()) for n in range(12)])
    assert [r.value for r in topics.get("out").log] == [str(n).encode() for n in range(12)]


def test_a_failed_record_in_the_middle_of_a_batch_is_dead_lettered_alone():
    app = App("middle", partitions=1)
    seen = app.table_store("seen", value="int", default=int)
    out = app.topic("out", value="json")

    @app.agent(app.topic("in", partitions=1), stores=[seen])
    async def picky(stream):
        async for key, value in stream.items():
            seen[key] += 1
            await out.send(key, value)
            if value.get("bad"):
                raise ValueError("bad record")

    topics, _tables = run_batch(app, [("a", b"{}"), ("a", b'{"bad": true}'), ("a", b"{}")])
    assert [r.value for r in topics.get("out").log] == [b"{}", b"{}"]
    assert [r.value for r in topics.get("dlq").log] == [b'{"bad": true}']
    assert [r.value for r in topics.get("seen-cl").log] == [(2).to_bytes(8, "big")]
