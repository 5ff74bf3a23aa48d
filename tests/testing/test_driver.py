"""The test driver runs the real operators: semantics of every runtime path, no broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

import pytest

import streamflow
from streamflow import App, Retry, Stop, Windowed
from streamflow.cli.loader import load_app
from streamflow.runtime.sender import partition_for
from streamflow.testing import ProcessingStopped, TestDriver
from tests.integration.support import expected_totals, generate

FLAKY_APP = "tests/integration/apps/flaky_spending.py"
WINDOWED_APP = "tests/integration/apps/spending_per_minute.py"


def order(order_id: str, user_id: str, status: str, amount: str, timestamp: int = 0) -> dict:
    return {
        "order_id": order_id,
        "user_id": user_id,
        "status": status,
        "amount": Decimal(amount),
        "currency": "USD",
        "timestamp": timestamp,
    }


def pipe_orders(driver: TestDriver, topic: str, orders: list[dict]) -> None:
    """Pipe generated (JSON) orders, converted to the topic's Avro types as `produce` does."""
    codec = driver.app.topics[topic].value_codec
    driver.pipe_many(topic, [(o["order_id"], codec.from_json(o), o["timestamp"]) for o in orders])


@pytest.fixture
def user_spending():
    return load_app("apps/user_spending.py")


def test_the_flagship_example(user_spending):
    with TestDriver(user_spending) as driver:
        driver.pipe("order_events", "o1", order("o1", "u1", "PAID", "10.50", 1000), timestamp=1000)
        assert driver.read("user_spending_summary") == [("u1", "10.50")]
        assert driver.table("user-spending-store")["u1"] == Decimal("10.50")
        driver.pipe("order_events", "o2", order("o2", "u1", "CREATED", "99.00"))
        driver.pipe("order_events", "o3", order("o3", "u1", "PAID", "0.25"))
        assert driver.read("user_spending_summary") == [("u1", "10.75")]
        assert driver.read("user_spending_summary") == []  # read drains


def test_user_spending_totals_are_exact_for_many_orders(user_spending):
    orders = generate(2000, 30, seed=3)
    totals, amounts = expected_totals(orders)
    with TestDriver(user_spending) as driver:
        pipe_orders(driver, "order_events", orders)
        updates = defaultdict(list)
        for user, value in driver.read("user_spending_summary"):
            updates[user].append(Decimal(value))
        table = driver.table("user-spending-store")
        assert dict(table.items()) == totals
        assert len(table) == len(totals)
    for user, values in updates.items():
        added = [b - a for a, b in zip([Decimal("0.00"), *values], values, strict=False)]
        assert sorted(added) == sorted(amounts[user])
        assert values[-1] == totals[user]


def test_records_and_tables_live_in_the_partitions_a_worker_would_use(user_spending):
    with TestDriver(user_spending) as driver:
        driver.pipe("order_events", "o1", order("o1", "user-7", "PAID", "1.00"))
        (repartitioned,) = driver.read_records("user-spending-orders-by-user-repartition")
        (summary,) = driver.read_records("user_spending_summary")
        (changelog,) = driver.read_records("user-spending-user-spending-store-changelog")
    expected = partition_for(b"user-7", user_spending.partitions)
    assert repartitioned.key == "user-7" and repartitioned.partition == expected
    assert changelog.partition == expected and changelog.value == Decimal("1.00")
    assert summary.partition == expected


def test_chained_tables_of_the_order_pipeline():
    app = load_app("apps/order_pipeline.py")
    from apps.order_pipeline import region_of

    orders = generate(800, 25, seed=11)
    totals, _ = expected_totals(orders)
    by_region: dict[str, Decimal] = defaultdict(Decimal)
    for user, total in totals.items():
        by_region[region_of(user)] += total
    with TestDriver(app) as driver:
        pipe_orders(driver, "order_events", orders)
        users = driver.table("user-totals")
        regions = driver.table("region-totals")
        assert {u: Decimal(t["total"]) for u, t in users.items()} == totals
        assert {r: Decimal(t["total"]) for r, t in regions.items()} == dict(by_region)
        paid = sum(o["status"] == "PAID" for o in orders)
        assert len(driver.read("user_totals")) == paid
        assert len(driver.read("region_totals")) == paid


def test_windowed_tables_are_keyed_by_windows_and_late_records_are_dropped():
    app = App("windows")
    clicks = app.topic("clicks", value="json")
    app.stream(clicks).group_by_key().windowed_by(streamflow.tumbling(60, grace=10)).count(
        name="per-minute"
    )
    with TestDriver(app) as driver:
        driver.pipe("clicks", "u1", {}, timestamp=1_000)
        driver.pipe("clicks", "u1", {}, timestamp=59_000)
        driver.pipe("clicks", "u1", {}, timestamp=61_000)
        driver.pipe("clicks", "u1", {}, timestamp=75_000)  # stream time 75 s: [0, 60) closed
        driver.pipe("clicks", "u1", {}, timestamp=30_000)  # late: dropped
        table = driver.table("per-minute")
        assert dict(table.items()) == {
            Windowed("u1", 0, 60_000): 2,
            Windowed("u1", 60_000, 120_000): 2,
        }
        updates = driver.read("windows-group-by-key-repartition")
        assert len(updates) == 5  # all five reached the table's partition


def test_windowed_app_hopping_and_tumbling():
    app = load_app(WINDOWED_APP)
    with TestDriver(app) as driver:
        for i, ts in enumerate([10_000, 70_000, 130_000]):
            driver.pipe(
                "order_events", f"o{i}", order(f"o{i}", "u1", "PAID", "1.00", ts), timestamp=ts
            )
        per_minute = dict(driver.table("spending-per-minute").items())
        per_two = dict(driver.table("orders-per-two-minutes").items())
    assert per_minute == {
        Windowed("u1", 0, 60_000): Decimal("1.00"),
        Windowed("u1", 60_000, 120_000): Decimal("1.00"),
        Windowed("u1", 120_000, 180_000): Decimal("1.00"),
    }
    assert per_two == {  # windows start at 0 or later
        Windowed("u1", 0, 120_000): 2,
        Windowed("u1", 60_000, 180_000): 2,
        Windowed("u1", 120_000, 240_000): 1,
    }


def test_retries_wait_for_their_backoff_and_permanent_failures_are_dead_lettered(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("FLAKY_DIR", str(tmp_path / "markers"))
    monkeypatch.delenv("FLAKY_POLICY", raising=False)
    app = load_app(FLAKY_APP)
    with TestDriver(app, start_time=1000) as driver:
        driver.pipe("order_events", "ok", order("ok", "u1", "PAID", "1.00"))
        driver.pipe("order_events", "flaky", order("flaky", "u1", "PAID", "2.03"))
        driver.pipe("order_events", "bad", order("bad", "u1", "PAID", "5.07"))
        # The flaky and the bad order wait in the first retry topic for 0.3 s.
        assert driver.read("user_spending_summary") == [("u1", "1.00")]
        assert driver.dead_letters() == []
        driver.advance_time(0.29)
        assert driver.read("user_spending_summary") == []
        driver.advance_time(0.01)
        assert driver.read("user_spending_summary") == [("u1", "3.03")]
        assert driver.dead_letters() == []  # bad waits 0.6 s more, in the second retry topic
        driver.advance_time(0.6)
        (letter,) = driver.dead_letters()
        assert driver.table("user-spending-store")["u1"] == Decimal("3.03")
    # It failed after the repartition: the bytes are those of the repartition topic.
    assert letter.key == b"u1"
    assert letter.value == app.topics["order_events"].value_codec.encode(
        order("bad", "u1", "PAID", "5.07")
    )
    assert letter.topic == "flaky-spending-orders-dead-letters"
    assert letter.step == "user-spending-store"
    assert letter.exception == "builtins.ValueError"
    assert letter.source_topic == "flaky-spending-orders-by-user-repartition"
    assert ("streamflow.retry.attempt", b"2") in letter.headers


def test_stop_policy_raises_and_fails_again_on_the_same_record(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAKY_DIR", str(tmp_path / "markers"))
    monkeypatch.setenv("FLAKY_POLICY", "stop")
    app = load_app(FLAKY_APP)
    with TestDriver(app) as driver:
        driver.pipe("order_events", "ok", order("ok", "u1", "PAID", "1.00"))
        with pytest.raises(ProcessingStopped, match=r"amount 5.07 is rejected.*Stop"):
            driver.pipe("order_events", "bad", order("bad", "u1", "PAID", "5.07"))
        # Nothing of the failed record was written; it fails again, as after a restart.
        with pytest.raises(ProcessingStopped, match=r"5\.07"):
            driver.pipe("order_events", "next", order("next", "u1", "PAID", "2.00"))
        assert driver.read("user_spending_summary") == [("u1", "1.00")]
        assert driver.table("user-spending-store")["u1"] == Decimal("1.00")
        assert driver.dead_letters() == []


def test_undecodable_records_are_dead_lettered_with_their_bytes(user_spending):
    with TestDriver(user_spending) as driver:
        driver.pipe_raw("order_events", b"k", b"\x00garbage", headers={"trace": "t-1"})
        driver.pipe("order_events", "o1", order("o1", "u1", "PAID", "1.00"))
        (letter,) = driver.dead_letters()
        assert driver.read("user_spending_summary") == [("u1", "1.00")]
    assert (letter.key, letter.value, letter.step) == (b"k", b"\x00garbage", "decode")
    assert letter.info.headers == [("trace", b"t-1")]
    assert letter.topic == "user-spending-dlq"


def test_a_value_the_topic_cannot_encode_is_refused_at_pipe(user_spending):
    with TestDriver(user_spending) as driver:
        with pytest.raises(ValueError, match=r"order_events.*avro"):
            driver.pipe("order_events", "o1", {"order_id": "o1"})
        assert driver.read("user_spending_summary") == []


def test_a_step_output_its_sink_cannot_encode_is_dead_lettered():
    app = App("sinks")
    app.stream(app.topic("in", value="json")).map_values(lambda v: v["n"]).to(
        app.topic("out", value="int")
    )
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {"n": 5})
        driver.pipe("in", "b", {"n": "five"})
        assert driver.read("out") == [("a", 5)]
        (letter,) = driver.dead_letters()
    assert letter.exception == "streamflow.runtime.processors.SinkEncodeError"
    assert "topic 'out' with its int codec" in letter.error
    assert letter.value == b'{"n":"five"}'


def test_table_views_are_read_only_mappings():
    app = App("counts")
    app.stream(app.topic("in")).group_by(lambda k, v: v["user"]).count(name="per-user")
    with TestDriver(app) as driver:
        driver.pipe_many(
            "in", [(None, {"user": "a"}), (None, {"user": "b"}), (None, {"user": "a"})]
        )
        table = driver.table("per-user")
        assert table["a"] == 2 and table.get("b") == 1 and table.get("c", 0) == 0
        assert "a" in table and "c" not in table
        assert sorted(table) == ["a", "b"] and len(table) == 2
        with pytest.raises(KeyError):
            table["c"]
        with pytest.raises(TypeError):
            table["a"] = 5  # type: ignore[index]
        with pytest.raises(KeyError, match="tables: per-user"):
            driver.table("nope")


def test_unknown_topics_are_explained():
    app = App("demo")
    app.stream(app.topic("in")).to(app.topic("out"))
    with TestDriver(app) as driver:
        with pytest.raises(ValueError, match=r"declares no topic 'nope' \(declared: in, out\)"):
            driver.pipe("nope", "k", {})
        with pytest.raises(ValueError, match="reads or writes no topic 'nope'"):
            driver.read("nope")


def test_agents_see_piped_records_and_what_the_app_writes():
    app = App("audit")
    orders = app.topic("orders", value="json")
    summary = app.topic("summary", value="int")
    app.stream(orders).group_by_key().count(name="n").to_stream().to(summary)
    seen: list = []
    counted: list = []

    @app.agent(orders, concurrency=2)
    async def audit(stream):
        async for order_id, value in stream.items():
            await asyncio.sleep(0)
            seen.append((order_id, value["status"]))

    @app.agent(summary)
    async def watch(stream):
        async for count in stream:
            counted.append(count)

    with TestDriver(app) as driver:
        driver.pipe("orders", "o1", {"status": "PAID"})
        assert seen == [("o1", "PAID")] and counted == [1]
        driver.pipe_many("orders", [("o1", {"status": "SHIPPED"}), ("o2", {"status": "NEW"})])
        assert sorted(seen) == [("o1", "PAID"), ("o1", "SHIPPED"), ("o2", "NEW")]
        assert sorted(counted) == [1, 1, 2]


def test_an_agent_that_raises_dead_letters_the_record_and_keeps_going():
    app = App("broken")
    inverses = app.topic("inverses", value="json")

    @app.agent(app.topic("in", value="int"))
    async def divide(stream):
        async for value in stream:
            await inverses.send("k", {"inverse": 1 / value})

    with TestDriver(app) as driver:
        driver.pipe("in", "k", 2)
        driver.pipe("in", "k", 0)
        driver.pipe("in", "k", 4)
        assert driver.read(inverses) == [("k", {"inverse": 0.5}), ("k", {"inverse": 0.25})]
        [letter] = driver.dead_letters()
        assert letter.step == "divide" and "ZeroDivisionError" in letter.info.exception
        assert letter.value == b"\x00\x00\x00\x00\x00\x00\x00\x00"


async def test_the_driver_works_inside_async_tests(user_spending):
    with TestDriver(user_spending) as driver:
        driver.pipe("order_events", "o1", order("o1", "u1", "PAID", "4.00"))
        assert driver.read("user_spending_summary") == [("u1", "4.00")]


def test_time_only_moves_forward():
    with TestDriver(App("t"), start_time=5) as driver:
        with pytest.raises(ValueError, match="forward"):
            driver.advance_time(-1)
        assert driver.now_ms == 5000


def test_a_closed_driver_says_so():
    app = App("t")
    app.stream(app.topic("in")).to("out")
    driver = TestDriver(app)
    driver.close()
    driver.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        driver.pipe("in", "k", {})


def test_the_driver_takes_an_app_reference():
    with TestDriver("apps/user_spending.py") as driver:
        assert driver.app.id == "user-spending"
    with pytest.raises(TypeError, match="needs a streamflow App"):
        TestDriver(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", [Retry(attempts=1, backoff=0), Stop()])
def test_policies_apply_after_group_by(policy):
    app = App("policies")
    (
        app.stream(app.topic("in", value="json"), on_error=policy)
        .group_by(lambda k, v: v["user"], value="json")
        .aggregate(lambda: 0, lambda k, v, total: total + 10 // v["n"], name="t", value="int")
    )
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {"user": "u", "n": 5})
        if isinstance(policy, Stop):
            with pytest.raises(ProcessingStopped, match="step 't'"):
                driver.pipe("in", "b", {"user": "u", "n": 0})
        else:
            driver.pipe("in", "b", {"user": "u", "n": 0})
            (letter,) = driver.dead_letters()  # no backoff: retried at once, then dead
            assert ("streamflow.retry.attempt", b"1") in letter.headers
        assert driver.table("t")["u"] == 2


def test_a_record_failing_after_an_aggregate_leaves_no_trace_before_its_retry():
    app = App("undo")
    calls: list[int] = []

    def flaky(count: int) -> int:
        calls.append(count)
        if len(calls) == 1:
            raise TimeoutError("slow")
        return count

    counts = app.stream(app.topic("in"), on_error=Retry(attempts=3, backoff=1)).group_by_key()
    counts.count(name="c").to_stream().map_values(flaky).to(app.topic("out", value="int"))
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {})
        assert driver.table("c").get("a") is None  # the failed attempt counted nothing
        driver.advance_time(5)
        assert driver.read("out") == [("a", 1)]
        assert dict(driver.table("c").items()) == {"a": 1}


def test_a_dead_lettered_record_changes_no_table_and_no_other_branch():
    app = App("undo")
    totals = (
        app.stream(app.topic("in", value="json"))
        .group_by_key()
        .aggregate(lambda: 0, lambda k, v, total: total + v["n"], name="totals", value="int")
    )
    updates = totals.to_stream()
    updates.to(app.topic("copy", value="int"))
    updates.map_values(lambda total: 100 // (total - 3)).to(app.topic("out", value="int"))
    with TestDriver(app) as driver:
        driver.pipe_many("in", [("a", {"n": 1}), ("a", {"n": 2}), ("a", {"n": 5})])
        # The second record brings the total to 3 and fails in one branch: it is
        # dead-lettered whole, so neither the table nor the other branch keeps it.
        (letter,) = driver.dead_letters()
        assert letter.value == b'{"n":2}' and letter.step.startswith("map_values")
        assert driver.read("copy") == [("a", 1), ("a", 6)]
        assert driver.read("out") == [("a", 100 // (1 - 3)), ("a", 100 // (6 - 3))]
        assert driver.table("totals")["a"] == 6


def test_late_records_in_a_failed_batch_do_not_move_stream_time():
    app = App("late")

    def weigh(key, value, total):
        if value.get("bad"):
            raise ValueError("bad record")
        return total + 1

    app.stream(app.topic("in")).group_by_key().windowed_by(streamflow.tumbling(10)).aggregate(
        lambda: 0, weigh, name="w", value="int"
    )
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {}, timestamp=1_000)
        driver.pipe("in", "a", {"bad": True}, timestamp=50_000)  # fails: stream time stays
        driver.pipe("in", "a", {}, timestamp=2_000)
        assert driver.table("w")[Windowed("a", 0, 10_000)] == 2
