"""Sliding and session windows, emit on close, late records and event time, through the
test driver. The cases follow Kafka Streams' own tests of sliding windows, session
windows and suppression (out-of-order records, grace, merges)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from streamflow import App, JoinWindows, Retry, Windowed, hopping, session, sliding, tumbling
from streamflow.testing import TestDriver


def _concat_app(windows, *, name="agg") -> App:
    """Aggregates of the values of a key as "0+a+b…" (Kafka Streams' test aggregator)."""
    app = App("windows")
    grouped = app.stream(app.topic("in", value="str")).group_by_key()
    kwargs = {}
    if windows.__class__.__name__ == "SessionWindows":
        kwargs["merger"] = lambda key, left, right: left + right[1:]
    table = grouped.windowed_by(windows).aggregate(
        lambda: "0", lambda key, value, agg: f"{agg}+{value}", name=name, value="str", **kwargs
    )
    table.to_stream().map(lambda w, v: (f"{w.key}@{w.start}-{w.end}", v)).to(
        app.topic("out", value="str")
    )
    return app


def _windows(driver: TestDriver, name: str = "agg") -> dict[tuple[int, int], object]:
    return {(w.start, w.end): value for w, value in driver.table(name).items()}


def _late_count(driver: TestDriver, step: str) -> float:
    """Late records counted in ``/metrics`` for ``step``, over all source topics."""
    return sum(
        sample.value
        for family in driver.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "streamflow_late_records_total" and sample.labels["step"] == step
    )


# --- sliding windows --------------------------------------------------------------------


def test_sliding_windows_hold_each_set_of_records_at_most_size_apart():
    # Kafka Streams' KStreamSlidingWindowAggregateTest.testAggregateSmallInput: 10 ms windows.
    with TestDriver(_concat_app(sliding(0.010, grace=0.050))) as driver:
        for value, ts in [("1", 10), ("2", 15), ("3", 20), ("4", 22), ("5", 30)]:
            driver.pipe("in", "A", value, timestamp=ts)
        assert _windows(driver) == {
            (0, 10): "0+1",
            (5, 15): "0+1+2",
            (10, 20): "0+1+2+3",
            (12, 22): "0+2+3+4",
            (20, 30): "0+3+4+5",
            (11, 21): "0+2+3",
            (16, 26): "0+3+4",
            (21, 31): "0+4+5",
            (23, 33): "0+5",
        }


def test_sliding_windows_of_out_of_order_records_match_their_definition():
    size, rng = 50, random.Random(7)
    times = [rng.randrange(1_000, 1_400) for _ in range(120)]
    app = App("windows")
    grouped = app.stream(app.topic("in", value="int")).group_by_key()
    grouped.windowed_by(sliding(size / 1000, grace=10)).count(name="agg")
    with TestDriver(app) as driver:
        for ts in times:  # arbitrary order, all on time (grace covers the disorder)
            driver.pipe("in", "k", 0, timestamp=ts)
        expected = {}
        for t in times:  # each record's left window, and its right window if not empty
            left = (t - size, t)
            expected[left] = sum(left[0] <= u <= left[1] for u in times)
            right = (t + 1, t + 1 + size)
            held = sum(right[0] <= u <= right[1] for u in times)
            if held:
                expected[right] = held
        assert _windows(driver) == expected


def test_sliding_windows_skip_closed_windows_and_drop_records_late_for_all():
    with TestDriver(_concat_app(sliding(0.010))) as driver:
        driver.pipe("in", "A", "1", timestamp=100)
        driver.pipe("in", "A", "2", timestamp=105)  # stream time 105
        driver.pipe("in", "A", "3", timestamp=98)  # its left window [88, 98] closed at 99
        driver.pipe("in", "A", "4", timestamp=90)  # every window holding 90 has closed
        assert _windows(driver) == {
            (90, 100): "0+1",
            (95, 105): "0+1+2+3",
            (101, 111): "0+2",
            (99, 109): "0+1+2",
        }
        assert _late_count(driver, "agg") == 1


# --- session windows --------------------------------------------------------------------


def test_sessions_grow_merge_and_replace_the_sessions_they_merged():
    # After Kafka Streams' KStreamSessionWindowAggregateProcessorTest.shouldMergeSessions.
    with TestDriver(_concat_app(session(0.050, grace=1))) as driver:
        driver.pipe("in", "john", "a", timestamp=0)
        driver.pipe("in", "john", "b", timestamp=10)  # within the gap: [0, 10]
        driver.pipe("in", "john", "c", timestamp=70)  # 60 ms later: a new session
        driver.pipe("in", "john", "d", timestamp=40)  # bridges both: one session [0, 70]
        driver.pipe("in", "mary", "x", timestamp=45)
        assert driver.read("out") == [
            ("john@0-0", "0+a"),
            ("john@0-0", None),
            ("john@0-10", "0+a+b"),
            ("john@70-70", "0+c"),
            ("john@0-10", None),
            ("john@70-70", None),
            ("john@0-70", "0+a+b+c+d"),
            ("mary@45-45", "0+x"),
        ]
        assert {(w.key, w.start, w.end): v for w, v in driver.table("agg").items()} == {
            ("john", 0, 70): "0+a+b+c+d",
            ("mary", 45, 45): "0+x",
        }
        assert [(k, v) for k, v in driver.read("windows-agg-changelog") if v is None] == [
            (Windowed("john", 0, 0), None),
            (Windowed("john", 0, 10), None),
            (Windowed("john", 70, 70), None),
        ]


def test_session_counts_and_reductions_merge_on_their_own():
    app = App("windows")
    grouped = app.stream(app.topic("in", value="int")).group_by_key()
    grouped.windowed_by(session(30, grace=30)).count(name="visits")
    grouped.windowed_by(session(30, grace=30)).reduce(max, name="largest")
    with TestDriver(app) as driver:
        driver.pipe_many("in", [("u", 5, 0), ("u", 9, 50_000), ("u", 1, 51_000)])
        driver.pipe("in", "u", 2, timestamp=25_000)  # bridges [0, 0] and [50 s, 51 s]
        assert dict(driver.table("visits").items()) == {Windowed("u", 0, 51_000): 4}
        assert dict(driver.table("largest").items()) == {Windowed("u", 0, 51_000): 9}


def test_a_session_aggregate_without_a_merger_fails_when_the_app_is_built():
    app = App("windows")
    grouped = app.stream(app.topic("in", value="int")).group_by_key().windowed_by(session(30))
    with pytest.raises(TypeError, match="needs merger="):
        grouped.aggregate(list, lambda k, v, agg: [*agg, v], name="pages")
    with pytest.raises(TypeError, match="only used by aggregations over session windows"):
        app.stream("in").group_by(lambda k, v: v).windowed_by(tumbling(5)).aggregate(
            int, lambda k, v, n: n, name="n", merger=lambda k, a, b: a
        )


def test_a_record_that_would_change_a_closed_session_is_late():
    with TestDriver(_concat_app(session(0.010))) as driver:
        driver.pipe("in", "k", "a", timestamp=100)
        driver.pipe("in", "k", "b", timestamp=200)  # [100, 100] closed at 111
        driver.pipe("in", "k", "c", timestamp=105)  # within its gap, but it closed
        assert _windows(driver) == {(100, 100): "0+a", (200, 200): "0+b"}


# --- emit on close ----------------------------------------------------------------------


def test_emit_on_close_sends_one_final_result_per_window_after_grace():
    # After Kafka Streams' SuppressScenarioTest (untilWindowCloses) on tumbling windows.
    app = _concat_app(tumbling(10, grace=5, emit="close"))
    with TestDriver(app) as driver:
        for value, ts in [("a", 1_000), ("b", 3_000), ("c", 12_000), ("d", 9_000)]:
            driver.pipe("in", "k", value, timestamp=ts)
        assert driver.read("out") == []  # [0 s, 10 s) closes at 15 s of stream time
        driver.pipe("in", "k", "e", timestamp=15_000)
        driver.pipe("in", "k", "late", timestamp=2_000)
        driver.pipe("in", "k", "f", timestamp=40_000)
        finals = driver.read_records("out")
        assert [(r.key, r.value, r.timestamp) for r in finals] == [
            ("k@0-10000", "0+a+b+d", 9_999),  # timed at the window's last millisecond
            ("k@10000-20000", "0+c+e", 19_999),
        ]
        # The table keeps the windows (with the final values) until their retention ends.
        assert _windows(driver)[(0, 10_000)] == "0+a+b+d"


def test_emit_on_close_for_sessions_and_sliding_windows():
    sessions = _concat_app(session(0.010, grace=0.020, emit="close"), name="agg")
    with TestDriver(sessions) as driver:
        for value, ts in [("a", 0), ("b", 5), ("c", 30), ("d", 12), ("e", 60)]:
            driver.pipe("in", "k", value, timestamp=ts)
        # d (within grace) grew [0, 5] to [0, 12]: it can grow until 22 (end + gap) and
        # takes records until 42 (+ grace): closed at 43. [30, 30] closes at 61.
        assert driver.read("out") == [("k@0-12", "0+a+b+d")]
        driver.pipe("in", "k", "f", timestamp=100)
        assert driver.read("out") == [("k@30-30", "0+c"), ("k@60-60", "0+e")]
    windowed = _concat_app(sliding(0.010, emit="close"))
    with TestDriver(windowed) as driver:
        for value, ts in [("a", 100), ("b", 104), ("c", 130)]:
            driver.pipe("in", "k", value, timestamp=ts)
        assert driver.read("out") == [
            ("k@90-100", "0+a"),
            ("k@94-104", "0+a+b"),
            ("k@101-111", "0+b"),
        ]


def test_windowed_by_emit_overrides_the_windows_own_strategy():
    app = App("windows")
    clicks = app.stream(app.topic("in", value="int")).group_by_key()
    table = clicks.windowed_by(hopping(10, advance=5), emit="close").count(name="n")
    table.to_stream().map(lambda w, n: (w.start, n)).to(app.topic("out", key="int", value="int"))
    with TestDriver(app) as driver:
        driver.pipe_many("in", [("k", 0, 1_000), ("k", 0, 7_000), ("k", 0, 30_000)])
        assert driver.read("out") == [(0, 2), (5_000, 1)]
    with pytest.raises(ValueError, match="emit must be"):
        clicks.windowed_by(tumbling(10), emit="final")


# --- late records -----------------------------------------------------------------------


def test_late_records_can_go_to_the_dead_letter_topic_whatever_the_error_policy():
    app = App("windows")
    clicks = app.stream(app.topic("in", value="int"), on_error=Retry(attempts=3, backoff=1))
    clicks.group_by_key().windowed_by(tumbling(10, late="dead-letter")).count(name="n")
    with TestDriver(app) as driver:
        driver.pipe("in", "k", 1, timestamp=50_000)
        driver.pipe("in", "k", 2, timestamp=1_000)
        driver.advance_time(60)
        [letter] = driver.dead_letters()
        assert letter.value == (2).to_bytes(8, "big")  # the original bytes
        assert letter.info.step == "n" and "late for every window" in letter.error
        assert dict(driver.table("n").items()) == {Windowed("k", 50_000, 60_000): 1}
        assert _late_count(driver, "n") == 1
    with pytest.raises(ValueError, match="late must be"):
        tumbling(10, late="keep")


# --- event time from the record ---------------------------------------------------------


def test_a_timestamp_extractor_times_windows_joins_and_the_records_written():
    app = App("windows")
    views = app.stream(app.topic("views", value="json"), timestamp=lambda k, v: v["at"])
    counts = views.group_by_key().windowed_by(tumbling(60, emit="close")).count(name="n")
    counts.to_stream().map(lambda w, n: (w.key, n)).to(app.topic("per-minute", value="int"))
    clicks = app.stream(
        app.topic("clicks", value="json"),
        timestamp=lambda k, v: datetime.fromisoformat(v["time"]),
    )
    views.join(clicks, lambda view, click: click["button"], window=JoinWindows.of(5)).to(
        app.topic("clicked", value="str")
    )
    with TestDriver(app) as driver:
        # Kafka timestamps say nothing useful here (all 0): the values carry event time.
        driver.pipe("views", "u1", {"at": 1_000}, timestamp=0)
        click = {"time": "1970-01-01T00:00:03+00:00", "button": "buy"}
        driver.pipe("clicks", "u1", click, timestamp=0)
        driver.pipe("views", "u1", {"at": 30_000}, timestamp=0)
        click = {"time": "1970-01-01T00:00:40+00:00", "button": "back"}  # 10 s after
        driver.pipe("clicks", "u1", click, timestamp=0)
        driver.pipe("views", "u1", {"at": 61_000}, timestamp=0)
        assert driver.read("per-minute") == [("u1", 2)]
        # Joined within 5 s of event time; a result carries the later of the two times.
        assert [(r.key, r.value, r.timestamp) for r in driver.read_records("clicked")] == [
            ("u1", "buy", 3_000)
        ]


def test_records_whose_timestamp_extractor_fails_follow_the_error_policy():
    app = App("windows")
    views = app.stream(app.topic("views", value="json"), timestamp=lambda k, v: v["at"])
    views.to(app.topic("copy", value="json"))
    with TestDriver(app) as driver:
        driver.pipe("views", "u1", {"at": 5_000}, timestamp=0)
        driver.pipe("views", "u2", {"no": "time"}, timestamp=0)
        driver.pipe("views", "u3", {"at": "noon"}, timestamp=0)
        driver.pipe("views", "u4", {"at": -5}, timestamp=0)
        assert [(r.key, r.timestamp) for r in driver.read_records("copy")] == [("u1", 5_000)]
        letters = driver.dead_letters()
        assert [(letter.key, letter.info.step) for letter in letters] == [
            (b"u2", "timestamp"),
            (b"u3", "timestamp"),
            (b"u4", "timestamp"),
        ]
        assert letters[0].info.exception == "builtins.KeyError" and "int" in letters[1].error


def test_a_topic_read_twice_takes_one_timestamp_extractor():
    app = App("windows")
    app.stream("views", timestamp=lambda k, v: 1)
    with pytest.raises(ValueError, match="two timestamp extractors"):
        app.stream("views", timestamp=lambda k, v: 2)
    with pytest.raises(TypeError, match="must be a function"):
        app.stream("other", timestamp=5)


def test_an_extractor_may_return_an_aware_datetime_but_not_a_naive_one():
    app = App("windows")
    views = app.stream(app.topic("views", value="str"), timestamp=lambda k, v: _parse(v))
    views.to(app.topic("copy", value="str"))
    with TestDriver(app) as driver:
        driver.pipe("views", "a", "2026-01-01T00:00:00+00:00", timestamp=0)
        driver.pipe("views", "b", "2026-01-01T00:00:00", timestamp=0)
        expected = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
        assert [(r.key, r.timestamp) for r in driver.read_records("copy")] == [("a", expected)]
        assert "naive datetime" in driver.dead_letters()[0].error


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_event_time_timers_follow_the_extracted_time():
    app = App("windows")
    orders = app.stream(app.topic("orders", value="json"), timestamp=lambda k, v: v["at"])

    def remind(ctx, key, order):
        ctx.schedule(key, ctx.timestamp + 1_000, order["at"])

    def reminded(ctx, key, placed_at):
        ctx.forward(key, [placed_at, ctx.timestamp])

    orders.process(remind, on_timer=reminded, name="remind").to(
        app.topic("reminders", value="json")
    )
    with TestDriver(app) as driver:  # Kafka timestamps far in the future: not used
        driver.pipe("orders", "o1", {"at": 5_000}, timestamp=10**12, partition=0)
        driver.pipe("orders", "o2", {"at": 5_500}, timestamp=10**12, partition=0)
        assert driver.read("reminders") == []
        driver.pipe("orders", "o3", {"at": 6_000}, timestamp=10**12, partition=0)
        assert driver.read("reminders") == [("o1", [5_000, 6_000])]
