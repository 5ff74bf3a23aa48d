"""The processor API (``stream.process``) with stores and event-time timers, through the
TestDriver: stores, forwarding, headers, timers (order, replacement, cancel, chains), and
what a failing processor leaves behind (nothing)."""

from __future__ import annotations

import logging

import pytest

from streamflow import App, ProcessorContext
from streamflow.testing import TestDriver


def one_partition_app() -> App:
    return App("proc", partitions=1)


def test_a_store_reads_writes_and_deletes():
    app = one_partition_app()
    totals = app.table_store("totals", key="str", value="int", default=int)
    names = app.table_store("names", key="str", value="str")

    def fn(ctx: ProcessorContext, key, value):
        if value.get("delete"):
            del ctx.store("totals")[key]
            ctx.forward(key, {"deleted": key in ctx.store("totals")})
            return
        ctx.store("totals")[key] += value["n"]
        ctx.store("names").setdefault(key, value["name"])
        ctx.forward(key, {"total": ctx.store("totals")[key], "name": ctx.store("names")[key]})

    app.stream(app.topic("in")).process(fn, stores=[totals, names]).to(app.topic("out"))
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {"n": 2, "name": "Ada"})
        driver.pipe("in", "a", {"n": 3, "name": "Bob"})
        driver.pipe("in", "b", {"n": 1, "name": "Cy"})
        assert driver.read("out") == [
            ("a", {"total": 2, "name": "Ada"}),
            ("a", {"total": 5, "name": "Ada"}),
            ("b", {"total": 1, "name": "Cy"}),
        ]
        assert dict(driver.table("totals").items()) == {"a": 5, "b": 1}
        driver.pipe("in", "a", {"delete": True})
        assert driver.read("out") == [("a", {"deleted": False})]
        assert dict(driver.table("totals").items()) == {"b": 1}


def test_a_store_without_a_default_raises_key_error_and_get_returns_none():
    app = one_partition_app()
    seen = app.table_store("seen")

    def fn(ctx, key, value):
        store = ctx.store("seen")
        ctx.forward(key, {"get": store.get(key), "in": key in store})
        store[key] = value
        assert store[key] == value  # reads back what this record wrote
        ctx.store("seen")["never"]  # raises KeyError: dead-lettered

    app.stream(app.topic("in")).process(fn, stores=[seen]).to(app.topic("out"))
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {"x": 1})
        assert driver.read("out") == []
        letters = driver.dead_letters()
        failed = [(d.step, d.info.exception) for d in letters]
        assert failed == [("process-fn", "builtins.KeyError")]
        assert len(driver.table("seen")) == 0  # all or nothing


def test_changing_a_value_read_from_a_store_without_writing_it_changes_nothing():
    app = one_partition_app()
    carts = app.table_store("carts", default=dict)

    def fn(ctx, key, value):
        cart = ctx.store("carts")[key]
        cart[value["item"]] = 1
        if value.get("save"):
            ctx.store("carts")[key] = cart

    app.stream(app.topic("in")).process(fn, stores=[carts])
    with TestDriver(app) as driver:
        driver.pipe("in", "u", {"item": "apple", "save": True})
        driver.pipe("in", "u", {"item": "pear"})
        assert driver.table("carts")["u"] == {"apple": 1}


def test_forward_sends_any_number_of_records_with_new_keys_and_times():
    app = one_partition_app()

    def split(ctx, key, sentence):
        for i, word in enumerate(sentence.split()):
            ctx.forward(word, len(word), timestamp=ctx.timestamp + i)

    counted = (
        app.stream(app.topic("lines", value="str"))
        .process(split, value="int")
        .group_by_key()  # forwarded keys changed: repartitioned
        .count(name="words")
    )
    with TestDriver(app) as driver:
        driver.pipe("lines", "l1", "to be or not to be", timestamp=100)
        assert dict(driver.table(counted.name).items()) == {"to": 2, "be": 2, "or": 1, "not": 1}
    topics = [s.topic.name for sub in app.topology().subtopologies for s in sub.sources]
    assert any(name.endswith("-repartition") for name in topics)


def test_the_context_shows_the_record_timestamp_partition_and_headers():
    app = App("proc", partitions=3)

    def fn(ctx, key, value):
        ctx.forward(
            key,
            {
                "timestamp": ctx.timestamp,
                "partition": ctx.partition,
                "headers": [[k, v.decode()] for k, v in ctx.headers],
                "key": ctx.key,
            },
        )

    app.stream(app.topic("in")).process(fn).to(app.topic("out"))
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {}, timestamp=42, headers=[("trace", b"t-1")], partition=2)
        [(_, seen)] = driver.read("out")
    assert seen == {"timestamp": 42, "partition": 2, "headers": [["trace", "t-1"]], "key": "a"}


def timer_app(fn, on_timer, partitions: int = 1) -> App:
    app = App("timers", partitions=partitions)
    app.stream(app.topic("in")).process(fn, on_timer=on_timer, name="proc").to(app.topic("out"))
    return app


def schedule_at(ctx, key, value):
    if "at" in value:
        ctx.schedule(key, value["at"], value.get("payload"))
    if value.get("cancel"):
        ctx.forward(key, {"cancelled": ctx.cancel(key)})


def emit_fired(ctx, key, payload):
    ctx.forward(key, {"fired": payload, "at": ctx.timestamp, "stream_time": ctx.stream_time})


def test_timers_fire_once_in_due_order_when_stream_time_reaches_them():
    with TestDriver(timer_app(schedule_at, emit_fired)) as driver:
        driver.pipe("in", "b", {"at": 200, "payload": "B"}, timestamp=0)
        driver.pipe("in", "a", {"at": 100, "payload": "A"}, timestamp=10)
        driver.pipe("in", "c", {"at": 500, "payload": "C"}, timestamp=20)
        assert driver.read("out") == []
        driver.pipe("in", "x", {}, timestamp=250)  # passes a and b, not c
        records = driver.read_records("out")
        assert [(r.key, r.value["fired"], r.timestamp) for r in records] == [
            ("a", "A", 100),
            ("b", "B", 200),
        ]
        assert all(r.value["stream_time"] == 250 for r in records)
        driver.pipe("in", "y", {}, timestamp=240)  # out of order: stream time stays at 250
        driver.pipe("in", "z", {}, timestamp=260)
        assert driver.read("out") == []
        driver.pipe("in", "z", {}, timestamp=500)
        assert driver.read("out") == [("c", {"fired": "C", "at": 500, "stream_time": 500})]
        assert len(driver.table("proc-timers")) == 0
        assert len(driver.table("proc-timer-index")) == 0


def test_scheduling_again_replaces_the_keys_timer_and_cancel_removes_it():
    with TestDriver(timer_app(schedule_at, emit_fired)) as driver:
        driver.pipe("in", "a", {"at": 100, "payload": 1}, timestamp=0)
        driver.pipe("in", "a", {"at": 300, "payload": 2}, timestamp=1)
        driver.pipe("in", "b", {"at": 150, "payload": 3}, timestamp=2)
        driver.pipe("in", "b", {"cancel": True}, timestamp=3)
        driver.pipe("in", "c", {"cancel": True}, timestamp=4)
        assert driver.read("out") == [("b", {"cancelled": True}), ("c", {"cancelled": False})]
        driver.pipe("in", "x", {}, timestamp=299)
        assert driver.read("out") == []
        driver.pipe("in", "x", {}, timestamp=300)
        assert driver.read("out") == [("a", {"fired": 2, "at": 300, "stream_time": 300})]


def test_a_timer_already_due_fires_right_after_the_record_that_set_it():
    with TestDriver(timer_app(schedule_at, emit_fired)) as driver:
        driver.pipe("in", "x", {}, timestamp=1000)
        driver.pipe("in", "a", {"at": 10, "payload": "late"}, timestamp=5)
        assert driver.read("out") == [("a", {"fired": "late", "at": 10, "stream_time": 1000})]


def test_a_timer_callback_can_schedule_the_next_timer_and_use_stores():
    app = App("timers", partitions=1)
    ticks = app.table_store("ticks", value="int", default=int)

    def start(ctx, key, value):
        ctx.schedule(key, ctx.timestamp + 100, None)

    def tick(ctx, key, payload):
        ctx.store("ticks")[key] += 1
        ctx.forward(key, ctx.store("ticks")[key])
        if ctx.store("ticks")[key] < 3:
            ctx.schedule(key, ctx.timestamp + 100, None)

    app.stream(app.topic("in")).process(start, stores=[ticks], on_timer=tick).to(
        app.topic("out", value="int")
    )
    with TestDriver(app) as driver:
        driver.pipe("in", "k", {}, timestamp=0)
        driver.pipe("in", "other", {}, timestamp=1000)  # k's first tick, and the two it chains
        out = driver.read_records("out")
    assert [(r.key, r.value, r.timestamp) for r in out] == [
        ("k", 1, 100),
        ("k", 2, 200),
        ("k", 3, 300),
    ]


def test_stream_time_and_timers_are_per_partition():
    with TestDriver(timer_app(schedule_at, emit_fired, partitions=2)) as driver:
        driver.pipe("in", "a", {"at": 100, "payload": "A"}, timestamp=0, partition=0)
        driver.pipe("in", "b", {}, timestamp=5000, partition=1)
        assert driver.read("out") == []  # partition 0 has not seen time pass
        driver.pipe("in", "c", {}, timestamp=100, partition=0)
        assert driver.read("out") == [("a", {"fired": "A", "at": 100, "stream_time": 100})]


def test_a_failing_processor_leaves_no_store_write_timer_or_output_behind():
    app = App("proc", partitions=1)
    seen = app.table_store("seen", value="int", default=int)

    def fn(ctx, key, value):
        ctx.store("seen")[key] += 1
        ctx.schedule(key, ctx.timestamp + 10, "t")
        ctx.forward(key, {"partial": True})
        if value.get("fail"):
            raise RuntimeError("payment provider down")

    app.stream(app.topic("in")).process(fn, stores=[seen], on_timer=emit_fired, name="p").to(
        app.topic("out")
    )
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {"fail": True}, timestamp=0)
        assert driver.read("out") == []
        assert [(d.step, d.error) for d in driver.dead_letters()] == [
            ("p", "payment provider down")
        ]
        assert len(driver.table("seen")) == 0
        assert len(driver.table("p-timers")) == 0
        driver.pipe("in", "b", {}, timestamp=100)
        assert [k for k, _ in driver.read("out")] == ["b"]  # a's timer never existed


def test_a_timer_callback_that_raises_drops_that_timer_only(caplog):
    def boom(ctx, key, payload):
        if payload == "bad":
            raise ValueError("no")
        emit_fired(ctx, key, payload)

    with TestDriver(timer_app(schedule_at, boom)) as driver:
        driver.pipe("in", "a", {"at": 10, "payload": "bad"}, timestamp=0)
        driver.pipe("in", "b", {"at": 20, "payload": "good"}, timestamp=0)
        with caplog.at_level(logging.WARNING):
            driver.pipe("in", "x", {}, timestamp=50)
        assert driver.read("out") == [("b", {"fired": "good", "at": 20, "stream_time": 50})]
        assert driver.dead_letters() == []  # the record that made them due was fine
        assert "dropped the timer of key 'a'" in caplog.text
        driver.pipe("in", "x", {}, timestamp=60)
        assert driver.read("out") == []  # dropped, not retried


def test_scheduling_without_on_timer_and_unknown_stores_fail_with_a_clear_message():
    app = App("proc", partitions=1)

    def needs_timer(ctx, key, value):
        ctx.schedule(key, 0)

    def needs_store(ctx, key, value):
        ctx.store("missing")

    app.stream(app.topic("a")).process(needs_timer)
    app.stream(app.topic("b")).process(needs_store)
    with TestDriver(app) as driver:
        driver.pipe("a", "k", {})
        driver.pipe("b", "k", {})
        errors = [d.error for d in driver.dead_letters()]
    assert "give stream.process(..., on_timer=fn)" in errors[0]
    assert "has no store 'missing'" in errors[1]


def test_process_refuses_what_is_not_a_store_or_a_function():
    app = App("proc")
    stream = app.stream(app.topic("in"))
    with pytest.raises(TypeError, match=r"app\.table_store"):
        stream.process(lambda ctx, k, v: None, stores=["stock"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="processor function"):
        stream.process("fn")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="default=int"):
        app.table_store("stock", default=0)  # type: ignore[arg-type]


def test_two_processors_share_a_store_in_one_subtopology():
    app = App("proc", partitions=1)
    stock = app.table_store("stock", value="int", default=int)

    def add(ctx, sku, n):
        ctx.store("stock")[sku] += n

    def take(ctx, sku, n):
        level = ctx.store("stock")[sku]
        ctx.forward(sku, "ok" if level >= n else "rejected")
        if level >= n:
            ctx.store("stock")[sku] = level - n

    app.stream(app.topic("restock", value="int")).process(add, stores=[stock])
    app.stream(app.topic("orders", value="int")).process(take, stores=[stock]).to(
        app.topic("out", value="str")
    )
    assert len(app.topology().subtopologies) == 1
    with TestDriver(app) as driver:
        driver.pipe("restock", "apple", 2)
        driver.pipe_many("orders", [("apple", 1), ("apple", 2), ("apple", 1)])
        assert driver.read("out") == [("apple", "ok"), ("apple", "rejected"), ("apple", "ok")]
        assert driver.table("stock")["apple"] == 0


# --- wall-clock timers ----------------------------------------------------------------------


def wall_app() -> App:
    app = App("wall", partitions=2)

    def fn(ctx, key, value):
        if value.get("cancel"):
            ctx.cancel(key)
        else:
            ctx.schedule(key, ctx.wall_time + value["in_ms"], value.get("payload"), clock="wall")

    def fired(ctx, key, payload):
        ctx.forward(key, {"payload": payload, "at": ctx.timestamp, "wall": ctx.wall_time})

    app.stream(app.topic("in")).process(fn, on_timer=fired, name="wall").to(app.topic("out"))
    return app


def test_wall_clock_timers_fire_when_time_passes_without_records():
    with TestDriver(wall_app(), start_time=100) as driver:
        driver.pipe("in", "a", {"in_ms": 5000, "payload": "A"}, partition=0)
        driver.pipe("in", "b", {"in_ms": 2000, "payload": "B"}, partition=1)
        driver.advance_time(1.0)
        assert driver.read("out") == []
        driver.advance_time(10.0)  # b at 102 s, a at 105 s, each at its time
        assert driver.read("out") == [
            ("b", {"payload": "B", "at": 102_000, "wall": 102_000}),
            ("a", {"payload": "A", "at": 105_000, "wall": 105_000}),
        ]
        assert driver.read("out") == []
        driver.advance_time(60)
        assert driver.read("out") == []  # once only
        assert len(driver.table("wall-timers")) == 0


def test_a_cancelled_wall_clock_timer_does_not_fire():
    with TestDriver(wall_app()) as driver:
        driver.pipe("in", "a", {"in_ms": 1000, "payload": "A"})
        driver.pipe("in", "a", {"cancel": True})
        driver.advance_time(5)
        assert driver.read("out") == []


def test_an_event_time_record_does_not_fire_a_wall_clock_timer():
    with TestDriver(wall_app()) as driver:
        driver.pipe("in", "a", {"in_ms": 60_000, "payload": "A"}, partition=0)
        driver.pipe("in", "x", {"in_ms": 10**9}, timestamp=10**8, partition=0)  # stream time
        assert driver.read("out") == []
        driver.advance_time(60)
        assert [k for k, _ in driver.read("out")] == ["a"]


def test_a_timer_clock_must_be_event_or_wall():
    app = App("wall", partitions=1)

    def fn(ctx, key, value):
        ctx.schedule(key, 0, clock="cpu")

    app.stream(app.topic("in")).process(fn, on_timer=emit_fired)
    with TestDriver(app) as driver:
        driver.pipe("in", "a", {})
        assert "'event' or 'wall'" in driver.dead_letters()[0].error


def test_a_processor_with_timers_reads_a_tick_topic_partitioned_like_its_input():
    app = App("wall", partitions=3)
    app.stream(app.topic("in", partitions=5)).process(schedule_at, on_timer=emit_fired, name="p")
    [sub] = app.topology().subtopologies
    assert {s.topic.name: s.topic.partitions for s in sub.sources} == {"in": 5, "wall-p-ticks": 5}


def test_transform_forwards_what_the_function_returns_and_refuses_anything_else():
    app = App("transforming")

    def split(ctx, key, value):
        if value.get("bad"):
            return "not a pair"
        return [(f"{key}-{n}", n) for n in range(value["n"])]

    app.stream(app.topic("in", partitions=1)).transform(split).to(app.topic("out", value="json"))
    with TestDriver(app) as driver:
        driver.pipe_many("in", [("a", {"n": 2}), ("b", {"bad": True}), ("c", {"n": 0})])
        assert driver.read("out") == [("a-0", 0), ("a-1", 1)]
        [letter] = driver.dead_letters()
        assert letter.step == "transform-split"
        assert "must return None, a (key, value) pair or a list of pairs" in letter.error
