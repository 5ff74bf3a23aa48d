"""Agents: sends and yields committed with the consumed record, stores, events, failures."""

import asyncio

import pytest

from streamflow import App, Event, Retry, Stop
from streamflow.runtime.sender import partition_for
from streamflow.testing import AgentBroken, ProcessingStopped, TestDriver


def test_sends_go_to_the_partition_their_key_picks_with_the_record_timestamp():
    app = App("fanout", partitions=4)
    orders = app.topic("orders")
    lines = app.topic("lines", value="json")

    @app.agent(orders)
    async def split(stream):
        async for order_id, order in stream.items():
            for sku in order["skus"]:
                await lines.send(sku, {"order": order_id}, headers=[("from", b"split")])

    with TestDriver(app) as driver:
        driver.pipe(orders, "o1", {"skus": ["a", "b", "c", "d"]}, timestamp=1234)
        records = driver.read_records(lines)
    assert [(r.key, r.value) for r in records] == [(s, {"order": "o1"}) for s in "abcd"]
    for record in records:
        assert record.partition == partition_for(record.key.encode(), 4)
        assert record.timestamp == 1234 and record.headers == [("from", b"split")]


def test_an_async_generator_agent_yields_into_its_sink():
    app = App("paid")
    orders, paid = app.topic("orders"), app.topic("paid", value="json")

    @app.agent(orders, sink=paid)
    async def only_paid(stream):
        async for order_id, order in stream.items():
            if order["status"] == "PAID":
                yield order_id, {"amount": order["amount"]}

    with TestDriver(app) as driver:
        driver.pipe_many(
            orders,
            [("o1", {"status": "NEW", "amount": 1}), ("o2", {"status": "PAID", "amount": 2})],
        )
        assert driver.read(paid) == [("o2", {"amount": 2})]


def test_events_carry_timestamp_headers_and_where_the_record_came_from():
    app = App("events", partitions=2)
    seen: list[Event] = []

    @app.agent(app.topic("clicks"))
    async def watch(stream):
        async for event in stream.events():
            seen.append(event)

    with TestDriver(app) as driver:
        driver.pipe("clicks", "u1", {"n": 1}, timestamp=10, headers={"trace": "t-1"})
        driver.pipe("clicks", "u1", {"n": 2}, timestamp=20)
    assert [(e.key, e.value, e.timestamp, e.offset) for e in seen] == [
        ("u1", {"n": 1}, 10, 0),
        ("u1", {"n": 2}, 20, 1),
    ]
    assert seen[0].headers == [("trace", b"t-1")] and seen[1].headers == []
    assert {e.partition for e in seen} == {partition_for(b"u1", 2)} and seen[0].topic == "clicks"


def test_agent_stores_count_per_key_and_show_in_the_table():
    app = App("counts")
    counts = app.table_store("per-user", key="str", value="int", default=int)
    alerts = app.topic("alerts", value="json")

    @app.agent(app.topic("logins"), stores=[counts])
    async def count(stream):
        async for user, _login in stream.items():
            counts[user] += 1
            if counts[user] == 3:
                await alerts.send(user, {"logins": counts.get(user)})
            if user == "gone":
                del counts[user]

    with TestDriver(app) as driver:
        driver.pipe_many("logins", [("u1", {})] * 3 + [("u2", {}), ("gone", {})])
        table = driver.table("per-user")
        assert (table["u1"], table["u2"], table.get("gone")) == (3, 1, None)
        assert driver.read(alerts) == [("u1", {"logins": 3})]


def test_a_failing_record_leaves_no_send_and_no_store_write_behind():
    app = App("rollback")
    counts = app.table_store("seen", key="str", value="int", default=int)
    out = app.topic("out", value="json")

    @app.agent(app.topic("in"), stores=[counts])
    async def risky(stream):
        async for key, value in stream.items():
            counts[key] += 1
            await out.send(key, value)
            if value.get("explode"):
                raise ValueError("boom")

    with TestDriver(app) as driver:
        driver.pipe("in", "k", {"n": 1})
        driver.pipe("in", "k", {"n": 2, "explode": True})
        driver.pipe("in", "k", {"n": 3})
        assert driver.read(out) == [("k", {"n": 1}), ("k", {"n": 3})]
        assert driver.table("seen")["k"] == 2
        [letter] = driver.dead_letters()
        assert letter.step == "risky" and letter.error == "boom"
        assert letter.value == b'{"n":2,"explode":true}'


def test_writing_a_key_of_another_partition_is_refused_with_the_reason():
    app = App("partitions", partitions=8)
    counts = app.table_store("by-sku", key="str", value="int", default=int)
    keys = [f"sku-{n}" for n in range(20)]
    # a key whose partition differs from the record's key's partition
    other = next(k for k in keys if partition_for(k.encode(), 8) != partition_for(b"order", 8))

    @app.agent(app.topic("orders"), stores=[counts])
    async def by_sku(stream):
        async for _order_id, order in stream.items():
            counts[order["sku"]] += 1

    with TestDriver(app) as driver:
        driver.pipe("orders", "order", {"sku": "order"})  # the record's own key: fine
        driver.pipe("orders", "order", {"sku": other})
        assert driver.table("by-sku")["order"] == 1 and driver.table("by-sku").get(other) is None
        [letter] = driver.dead_letters()
        assert f"key {other!r} belongs to partition" in letter.error
        assert "send the change to a topic keyed by this key" in letter.error


def test_an_agent_beside_a_table_shares_the_record_and_its_failure():
    app = App("beside")
    orders = app.topic("orders")
    app.stream(orders).group_by(lambda k, v: v["user"]).count(name="orders-per-user")

    @app.agent(orders)
    async def check(stream):
        async for order in stream:
            if order.get("bad"):
                raise ValueError("rejected by the agent")

    with TestDriver(app) as driver:
        driver.pipe_many(
            orders,
            [("o1", {"user": "u"}), ("o2", {"user": "u", "bad": True}), ("o3", {"user": "u"})],
        )
        # the record the agent failed is not counted either: a failure leaves nothing behind
        assert driver.table("orders-per-user")["u"] == 2
        assert [letter.step for letter in driver.dead_letters()] == ["check"]


def test_concurrent_instances_share_the_stream():
    app = App("concurrent")
    out = app.topic("out", value="int")
    running: set[int] = set()
    overlapped = []

    @app.agent(app.topic("in", value="int", partitions=1), concurrency=3)
    async def slow(stream):
        async for value in stream:
            running.add(value)
            await asyncio.sleep(0.001)
            overlapped.append(len(running))
            running.discard(value)
            await out.send(None, value * 10)

    with TestDriver(app) as driver:
        driver.pipe_many("in", [(None, n) for n in range(6)])
        assert sorted(v for _, v in driver.read(out)) == [0, 10, 20, 30, 40, 50]
    assert max(overlapped) >= 1


def test_a_retried_agent_record_runs_again_once_due():
    app = App("retrying")
    out = app.topic("out", value="json")
    attempts: list[int] = []

    @app.agent(app.topic("in"), on_error=Retry(attempts=2, backoff=5.0))
    async def flaky(stream):
        async for event in stream.events():
            attempt = int(dict(event.headers).get("streamflow.retry.attempt", b"0"))
            attempts.append(attempt)
            if attempt < 1:
                raise TimeoutError("gateway timeout")
            await out.send(event.key, {"attempt": attempt})

    with TestDriver(app, start_time=100) as driver:
        driver.pipe("in", "p1", {})
        assert driver.read(out) == [] and attempts == [0]
        driver.advance_time(5)
        assert driver.read(out) == [("p1", {"attempt": 1})] and attempts == [0, 1]
        assert driver.dead_letters() == []


def test_an_agent_under_stop_stops_the_processing():
    app = App("stopping")

    @app.agent(app.topic("in"), on_error=Stop())
    async def strict(stream):
        async for _value in stream:
            raise RuntimeError("cannot go on")

    with TestDriver(app) as driver, pytest.raises(ProcessingStopped, match="strict"):
        driver.pipe("in", "k", {})


def test_an_agent_that_returns_without_taking_a_record_is_broken():
    app = App("broken")

    @app.agent(app.topic("in"))
    async def lazy(stream):
        return

    with TestDriver(app) as driver, pytest.raises(AgentBroken, match="returned without holding"):
        driver.pipe("in", "k", {})


def test_an_agent_that_returns_after_a_record_is_started_again():
    app = App("restarting")
    out = app.topic("out", value="json")

    @app.agent(app.topic("in"))
    async def one_shot(stream):
        async for key, value in stream.items():
            await out.send(key, value)
            break

    with TestDriver(app) as driver:
        driver.pipe_many("in", [("a", {}), ("b", {})])
        assert driver.read(out) == [("a", {}), ("b", {})]


def test_the_plan_refuses_agents_that_cannot_work():
    app = App("plan")
    topic = app.topic("in")

    def not_async(stream):
        pass

    async def plain(stream):
        async for _ in stream:
            pass

    async def yielding(stream):
        async for value in stream:
            yield None, value

    with pytest.raises(TypeError, match="must be an async function"):
        app.agent(topic)(not_async)
    with pytest.raises(TypeError, match="does not yield"):
        app.agent(topic, sink="out")(plain)
    with pytest.raises(TypeError, match="has no sink"):
        app.agent(topic)(yielding)
    with pytest.raises(ValueError, match="concurrency must be"):
        app.agent(topic, concurrency=0)(plain)
    with pytest.raises(TypeError, match="stores= takes stores"):
        app.agent(topic, stores=["nope"])(plain)


def test_undeclared_stores_and_sends_outside_an_agent_say_what_to_do():
    app = App("misuse")
    stock = app.table_store("stock", value="int", default=int)

    @app.agent(app.topic("in"))
    async def sneaky(stream):
        async for key, _ in stream.items():
            stock[key] += 1

    with TestDriver(app) as driver:
        driver.pipe("in", "k", {})
        [letter] = driver.dead_letters()
        assert "does not declare it" in letter.error and "stores=[...]" in letter.error
    with pytest.raises(RuntimeError, match="works inside an agent"):
        stock["k"]
    with pytest.raises(RuntimeError, match="works inside an agent, a timer or a crontab"):
        asyncio.run(app.topic("in").send("k", {}))


def test_a_value_the_sink_cannot_encode_dead_letters_the_record():
    app = App("encode")
    numbers = app.topic("numbers", value="int")

    @app.agent(app.topic("in"))
    async def convert(stream):
        async for key, value in stream.items():
            await numbers.send(key, value["n"])

    with TestDriver(app) as driver:
        driver.pipe_many("in", [("a", {"n": 1}), ("b", {"n": "not a number"})])
        assert driver.read(numbers) == [("a", 1)]
        assert [letter.step for letter in driver.dead_letters()] == ["convert"]
