"""Windowed stream-stream joins (inner, left and outer), run through the TestDriver.

The scenarios follow Kafka Streams' own ``KStreamKStreamJoinTest``,
``KStreamKStreamLeftJoinTest`` and ``KStreamKStreamOuterJoinTest``: records on both sides
with several values per key, windows that are symmetric or reach only one way, records out
of order within the grace period and later than it, the timestamps of the results, and the
unmatched records of left and outer joins, emitted once their window has closed and never
after a match. Most apps read topics of one partition, so that every key shares one stream
time (stream time is kept per partition).
"""

from __future__ import annotations

import pytest

from streamflow import App, JoinWindows
from streamflow.testing import TestDriver

KEYS = [0, 1, 2, 3]
STEP = "j"


def plus(left, right) -> str:
    """The joiner of the Kafka Streams tests: ``"X0+Y0"``, ``"X0+None"`` for a missing side."""
    return f"{left}+{right}"


def join_app(
    how: str = "inner",
    window: JoinWindows | None = None,
    *,
    joiner=plus,
    partitions: int = 1,
) -> App:
    app = App("ssj")
    left = app.stream(app.topic("left", key="int", value="str", partitions=partitions))
    right = app.stream(app.topic("right", key="int", value="str", partitions=partitions))
    join = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[how]
    joined = join(right, joiner, window=window or JoinWindows.of(0.1), name=STEP)
    joined.to(app.topic("out", key="int", value="str", partitions=partitions))
    return app


def pipe(driver: TestDriver, topic: str, prefix: str, times, keys=KEYS) -> None:
    """One record per key, ``prefix`` + key as value; ``times`` is one timestamp or one a key."""
    times = times if isinstance(times, list) else [times] * len(keys)
    for key, timestamp in zip(keys, times, strict=True):
        driver.pipe(topic, key, f"{prefix}{key}", timestamp=timestamp)


def out(driver: TestDriver) -> list[tuple[int, str, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_records("out")]


# --- inner joins ---------------------------------------------------------------------------


def test_join_pairs_every_record_of_a_key_with_every_record_of_the_other_side():
    # KStreamKStreamJoinTest.testJoin: all records at one timestamp, within any window.
    with TestDriver(join_app()) as driver:
        pipe(driver, "left", "X", 0, KEYS[:2])
        assert out(driver) == []

        pipe(driver, "right", "Y", 0, KEYS[:2])
        assert out(driver) == [(0, "X0+Y0", 0), (1, "X1+Y1", 0)]

        pipe(driver, "left", "X", 0)
        assert out(driver) == [(0, "X0+Y0", 0), (1, "X1+Y1", 0)]

        pipe(driver, "right", "YY", 0)
        assert out(driver) == [
            (0, "X0+YY0", 0),
            (0, "X0+YY0", 0),
            (1, "X1+YY1", 0),
            (1, "X1+YY1", 0),
            (2, "X2+YY2", 0),
            (3, "X3+YY3", 0),
        ]

        pipe(driver, "left", "XX", 0)
        assert out(driver) == [
            (0, "XX0+Y0", 0),
            (0, "XX0+YY0", 0),
            (1, "XX1+Y1", 0),
            (1, "XX1+YY1", 0),
            (2, "XX2+YY2", 0),
            (3, "XX3+YY3", 0),
        ]
        assert driver.dead_letters() == []


def test_join_pairs_several_values_per_key_and_timestamp_in_time_order():
    with TestDriver(join_app()) as driver:
        driver.pipe("left", 0, "A", timestamp=50)
        driver.pipe("left", 0, "B", timestamp=0)
        driver.pipe("left", 0, "C", timestamp=0)
        driver.pipe("left", 1, "K", timestamp=0)  # another key: never joined with key 0
        assert out(driver) == []

        driver.pipe("right", 0, "y", timestamp=20)
        # the stored records in time order, those of one timestamp in arrival order
        assert out(driver) == [(0, "B+y", 20), (0, "C+y", 20), (0, "A+y", 50)]

        driver.pipe("right", 0, "z", timestamp=20)
        assert out(driver) == [(0, "B+z", 20), (0, "C+z", 20), (0, "A+z", 50)]

        driver.pipe("left", 0, "D", timestamp=20)
        assert out(driver) == [(0, "D+y", 20), (0, "D+z", 20)]


def test_join_symmetric_window_bounds_are_inclusive_both_ways():
    # KStreamKStreamJoinTest.testWindowing: records of the other side just inside and just
    # outside the window; a grace of 1 s keeps every record here on time.
    with TestDriver(join_app(window=JoinWindows.of(0.1, grace=1))) as driver:
        pipe(driver, "left", "X", 1000)

        pipe(driver, "right", "a", [899, 900, 901, 902])  # right >= 1000 - 100 joins
        assert out(driver) == [(1, "X1+a1", 1000), (2, "X2+a2", 1000), (3, "X3+a3", 1000)]

        pipe(driver, "right", "b", [1099, 1100, 1101, 1102])  # right <= 1000 + 100 joins
        assert out(driver) == [(0, "X0+b0", 1099), (1, "X1+b1", 1100)]

        # the other way round: left records before and after right records at 2000
        pipe(driver, "right", "Y", 2000)
        assert out(driver) == []
        pipe(driver, "left", "c", [1899, 1900, 1901, 1902])
        assert out(driver) == [(1, "c1+Y1", 2000), (2, "c2+Y2", 2000), (3, "c3+Y3", 2000)]
        pipe(driver, "left", "d", [2099, 2100, 2101, 2102])
        assert out(driver) == [(0, "d0+Y0", 2099), (1, "d1+Y1", 2100)]


def test_join_window_reaching_only_after_the_left_record():
    # KStreamKStreamJoinTest.testAsymmetricWindowingAfter: JoinWindows(before=0, after=0.1).
    window = JoinWindows(before=0, after=0.1, grace=1)
    with TestDriver(join_app(window=window)) as driver:
        pipe(driver, "left", "X", 1000)
        pipe(driver, "right", "a", [999, 1000, 1001, 1002])
        assert out(driver) == [(1, "X1+a1", 1000), (2, "X2+a2", 1001), (3, "X3+a3", 1002)]
        pipe(driver, "right", "b", [1099, 1100, 1101, 1102])
        assert out(driver) == [(0, "X0+b0", 1099), (1, "X1+b1", 1100)]

        pipe(driver, "right", "Y", 3000)
        pipe(driver, "left", "c", [2899, 2900, 2901, 2902])  # left at t joins t..t+100
        assert out(driver) == [(1, "c1+Y1", 3000), (2, "c2+Y2", 3000), (3, "c3+Y3", 3000)]
        pipe(driver, "left", "d", [2999, 3000, 3001, 3002])
        assert out(driver) == [(0, "d0+Y0", 3000), (1, "d1+Y1", 3000)]


def test_join_window_reaching_only_before_the_left_record():
    # KStreamKStreamJoinTest.testAsymmetricWindowingBefore: JoinWindows(before=0.1, after=0).
    window = JoinWindows(before=0.1, after=0, grace=1)
    with TestDriver(join_app(window=window)) as driver:
        pipe(driver, "left", "X", 1000)
        pipe(driver, "right", "a", [899, 900, 901, 902])
        assert out(driver) == [(1, "X1+a1", 1000), (2, "X2+a2", 1000), (3, "X3+a3", 1000)]
        pipe(driver, "right", "b", [999, 1000, 1001, 1002])
        assert out(driver) == [(0, "X0+b0", 1000), (1, "X1+b1", 1000)]

        pipe(driver, "right", "Y", 3000)
        pipe(driver, "left", "c", [2999, 3000, 3001, 3002])  # left at t joins t-100..t
        assert out(driver) == [(1, "c1+Y1", 3000), (2, "c2+Y2", 3001), (3, "c3+Y3", 3002)]
        pipe(driver, "left", "d", [3099, 3100, 3101, 3102])
        assert out(driver) == [(0, "d0+Y0", 3099), (1, "d1+Y1", 3100)]


def test_join_result_is_timed_at_the_later_of_its_two_records():
    with TestDriver(join_app()) as driver:
        driver.pipe("left", 0, "A", timestamp=100)
        driver.pipe("right", 0, "early", timestamp=40)
        driver.pipe("right", 0, "late", timestamp=170)
        driver.pipe("left", 0, "B", timestamp=90)
        assert out(driver) == [
            (0, "A+early", 100),
            (0, "A+late", 170),
            (0, "B+early", 90),
            (0, "B+late", 170),
        ]


def test_out_of_order_records_within_grace_join_and_later_ones_are_dropped():
    # window 100 ms either way, grace 50 ms: a record is late once stream time is past its
    # time + 100 + 50.
    with TestDriver(join_app(window=JoinWindows.of(0.1, grace=0.05))) as driver:
        driver.pipe("left", 0, "X", timestamp=1000)
        driver.pipe("right", 1, "W", timestamp=1200)  # another key moves stream time to 1200
        assert out(driver) == []

        driver.pipe("right", 0, "Y", timestamp=1050)  # 1050 + 150 = 1200: just on time
        assert out(driver) == [(0, "X+Y", 1050)]
        driver.pipe("right", 0, "Z", timestamp=1049)  # 1199 < 1200: late, though X is near
        assert out(driver) == []

        driver.pipe("left", 0, "L", timestamp=1049)  # late as well (its after is 100 ms)
        assert out(driver) == []
        driver.pipe("left", 0, "M", timestamp=1050)  # on time; the late Z was not kept
        assert out(driver) == [(0, "M+Y", 1050)]
        assert driver.dead_letters() == []


def test_lateness_uses_each_sides_reach_forward_in_asymmetric_windows():
    # before=0.2, after=0: a left record at t reaches back 200 ms and not forward, so it is
    # late as soon as it is more than the grace behind stream time; a right record at t joins
    # left records up to t + 200 and is late only 200 ms + grace behind.
    window = JoinWindows(before=0.2, after=0, grace=0.01)
    with TestDriver(join_app(window=window)) as driver:
        driver.pipe("right", 0, "r", timestamp=900)
        driver.pipe("left", 1, "adv", timestamp=1000)  # stream time 1000
        driver.pipe("left", 0, "L1", timestamp=989)  # 989 + 0 + 10 < 1000: late
        driver.pipe("left", 0, "L2", timestamp=990)  # on time, joins r (900 >= 990 - 200)
        assert out(driver) == [(0, "L2+r", 990)]

        driver.pipe("right", 0, "s", timestamp=790)  # 790 + 200 + 10 = 1000: on time
        assert out(driver) == [(0, "L2+s", 990)]
        driver.pipe("right", 0, "t", timestamp=789)  # late, though L2 is near
        assert out(driver) == []


def test_old_records_are_deleted_from_the_window_stores_and_no_longer_join():
    with TestDriver(join_app()) as driver:  # span 200 ms, no grace
        driver.pipe("left", 0, "A", timestamp=0)
        driver.pipe("right", 0, "y", timestamp=0)
        assert out(driver) == [(0, "A+y", 0)]
        assert dict(driver.table(f"{STEP}-left").items()) == {(0, 0): ["A"]}
        assert dict(driver.table(f"{STEP}-right").items()) == {(0, 0): ["y"]}

        driver.pipe("left", 0, "B", timestamp=5000)
        driver.pipe("right", 0, "z", timestamp=5000)
        assert out(driver) == [(0, "B+z", 5000)]  # A and y are far out of the window
        driver.pipe("right", 0, "old", timestamp=100)  # too late to join A
        assert out(driver) == []
        assert dict(driver.table(f"{STEP}-left").items()) == {(0, 5000): ["B"]}
        assert dict(driver.table(f"{STEP}-right").items()) == {(0, 5000): ["z"]}


def test_window_stores_are_tables_of_the_driver_named_after_the_step():
    for how, has_unmatched in (("inner", False), ("left", True), ("outer", True)):
        with TestDriver(join_app(how)) as driver:
            driver.pipe("left", 0, "A", timestamp=10)
            driver.pipe("left", 0, "B", timestamp=10)
            driver.pipe("right", 1, "y", timestamp=20)
            assert dict(driver.table(f"{STEP}-left").items()) == {(0, 10): ["A", "B"]}
            assert dict(driver.table(f"{STEP}-right").items()) == {(1, 20): ["y"]}
            if has_unmatched:
                assert len(driver.table(f"{STEP}-unmatched").items()) == (
                    2 if how == "outer" else 1
                )
            else:
                with pytest.raises(KeyError, match=f"{STEP}-unmatched"):
                    driver.table(f"{STEP}-unmatched")


def test_records_with_a_none_value_are_not_joined():
    # Kafka Streams skips input records with a null key or a null value in stream-stream
    # joins: they neither join nor are stored.
    for how in ("inner", "left", "outer"):
        with TestDriver(join_app(how)) as driver:
            driver.pipe("left", 0, None, timestamp=0)
            driver.pipe("right", 0, "y", timestamp=0)
            driver.pipe("right", 1, None, timestamp=0)
            driver.pipe("left", 1, "X", timestamp=0)
            driver.pipe("left", 9, "adv", timestamp=1000)  # closes every window above
            results = sorted((k, v) for k, v, _ in out(driver))
            assert driver.dead_letters() == []
            assert (
                results
                == {
                    "inner": [],
                    "left": [(1, "X+None")],
                    "outer": [(0, "None+y"), (1, "X+None")],
                }[how]
            ), how


def test_a_joiner_that_raises_dead_letters_the_record_and_emits_nothing_of_it():
    def joiner(left, right):
        if (left, right) == ("B", "boom"):
            raise ValueError("cannot join B with boom")
        return plus(left, right)

    with TestDriver(join_app(joiner=joiner)) as driver:
        driver.pipe("left", 0, "A", timestamp=0)
        driver.pipe("left", 0, "B", timestamp=0)
        driver.pipe("right", 0, "boom", timestamp=0)  # A+boom would work, B+boom fails
        assert out(driver) == []
        (letter,) = driver.dead_letters()
        assert (letter.value, letter.step, letter.source_topic) == (b"boom", STEP, "right")
        assert "cannot join B with boom" in letter.error

        driver.pipe("right", 0, "fine", timestamp=0)  # the join goes on
        assert out(driver) == [(0, "A+fine", 0), (0, "B+fine", 0)]
        driver.pipe("left", 0, "C", timestamp=0)  # the failed record was not kept
        assert out(driver) == [(0, "C+fine", 0)]
        assert driver.dead_letters() == []


def test_join_after_a_key_change_repartitions_the_rekeyed_side_only():
    app = App("ssj")
    orders = app.stream(app.topic("orders", key="str", value="str", partitions=2))
    payments = app.stream(app.topic("payments", key="str", value="str", partitions=2))
    by_customer = orders.select_key(lambda order_id, customer: customer)
    by_customer.join(payments, plus, window=JoinWindows.of(1), name=STEP).to(
        app.topic("out", key="str", value="str", partitions=2)
    )
    with TestDriver(app) as driver:
        driver.pipe("orders", "o1", "c1", timestamp=0)
        driver.pipe("orders", "o2", "c2", timestamp=0)
        driver.pipe("payments", "c1", "p1", timestamp=500)
        driver.pipe("payments", "o2", "p2", timestamp=500)  # keyed by order: no match
        assert driver.read("out") == [("c1", "c1+p1")]
        assert sorted(driver.read(f"ssj-{STEP}-left-by-key-repartition")) == [
            ("c1", "c1"),
            ("c2", "c2"),
        ]
        with pytest.raises(ValueError, match="no topic"):
            driver.read(f"ssj-{STEP}-right-by-key-repartition")
        assert driver.dead_letters() == []


def test_join_after_a_key_change_repartitions_with_the_other_sides_key_codec():
    # As a stream-table join does with the table's key codec: the re-keyed side is
    # repartitioned with the key codec of the side that was not re-keyed.
    app = App("ssj")
    orders = app.stream(app.topic("orders", key="int", value="str", partitions=1))
    payments = app.stream(app.topic("payments", key="str", value="str", partitions=1))
    by_customer = orders.select_key(lambda order_no, customer: customer)
    by_customer.join(payments, plus, window=JoinWindows.of(1), name=STEP).to(
        app.topic("out", key="str", value="str", partitions=1)
    )
    with TestDriver(app) as driver:
        driver.pipe("orders", 1, "c1", timestamp=0)
        driver.pipe("payments", "c1", "p1", timestamp=500)
        assert driver.read("out") == [("c1", "c1+p1")]
        assert driver.dead_letters() == []


def test_join_of_two_rekeyed_streams_repartitions_both_sides():
    app = App("ssj")
    left = app.stream(app.topic("left", key="str", value="str", partitions=3))
    right = app.stream(app.topic("right", key="str", value="str", partitions=3))
    first_letter = lambda k, v: v[0]  # noqa: E731
    left.select_key(first_letter).join(
        right.select_key(first_letter), plus, window=JoinWindows.of(1), name=STEP
    ).to(app.topic("out", key="str", value="str", partitions=3))
    with TestDriver(app) as driver:
        driver.pipe("left", "l1", "apple", timestamp=0)
        driver.pipe("left", "l2", "banana", timestamp=0)
        driver.pipe("right", "r1", "avocado", timestamp=10)
        driver.pipe("right", "r2", "cherry", timestamp=10)
        assert driver.read("out") == [("a", "apple+avocado")]
        assert sorted(driver.read(f"ssj-{STEP}-left-by-key-repartition")) == [
            ("a", "apple"),
            ("b", "banana"),
        ]
        assert sorted(driver.read(f"ssj-{STEP}-right-by-key-repartition")) == [
            ("a", "avocado"),
            ("c", "cherry"),
        ]
        assert set(dict(driver.table(f"{STEP}-left").items())) == {("a", 0), ("b", 0)}


def test_window_durations_are_exact_in_milliseconds():
    # 1.001 s is 1001 ms: records 1001 ms apart join, 1002 ms apart do not.
    with TestDriver(join_app(window=JoinWindows.of(1.001, grace=5))) as driver:
        driver.pipe("left", 0, "A", timestamp=0)
        driver.pipe("right", 0, "in", timestamp=1001)
        driver.pipe("right", 0, "out", timestamp=1002)
        assert out(driver) == [(0, "A+in", 1001)]


def test_stream_time_is_kept_per_partition():
    # Records of a key in another partition do not close a key's windows.
    with TestDriver(join_app("left", partitions=4)) as driver:
        driver.pipe("left", 0, "A", timestamp=0, partition=0)
        driver.pipe("left", 1, "far", timestamp=10_000, partition=1)
        driver.pipe("right", 0, "y", timestamp=100, partition=0)  # on time in partition 0
        assert out(driver) == [(0, "A+y", 100)]
        driver.pipe("left", 2, "adv", timestamp=10_000, partition=0)
        assert out(driver) == []  # A matched: no A+None


def test_each_driver_starts_from_an_empty_join_and_its_own_stream_time():
    app = join_app()
    with TestDriver(app) as driver:
        driver.pipe("left", 0, "A", timestamp=10_000)
        driver.pipe("right", 0, "y", timestamp=10_000)
        assert out(driver) == [(0, "A+y", 10_000)]
    with TestDriver(app) as driver:
        driver.pipe("left", 0, "B", timestamp=0)
        driver.pipe("right", 0, "z", timestamp=0)
        assert out(driver) == [(0, "B+z", 0)]


# --- left joins ----------------------------------------------------------------------------


def test_left_join_emits_matches_at_once_and_unmatched_records_once_their_window_closed():
    # KStreamKStreamLeftJoinTest: window 100 ms either way, no grace; a left record without a
    # match is emitted as X+None when stream time passes its time + 200.
    with TestDriver(join_app("left")) as driver:
        pipe(driver, "left", "X", 0, KEYS[:2])
        assert out(driver) == []  # no X+None yet: the window is open

        pipe(driver, "right", "Y", 0, KEYS[:1])
        assert out(driver) == [(0, "X0+Y0", 0)]

        pipe(driver, "left", "XX", 100)
        assert out(driver) == [(0, "XX0+Y0", 100)]
        pipe(driver, "right", "YY", 100, KEYS[1:3])  # X1 at 0 and XX1 at 100 match YY1
        assert out(driver) == [(1, "X1+YY1", 100), (1, "XX1+YY1", 100), (2, "XX2+YY2", 100)]

        pipe(driver, "right", "Z", 300, KEYS[3:])  # XX3 (100) is open until stream time 300
        assert out(driver) == []
        pipe(driver, "right", "Z", 301, KEYS[3:])
        assert out(driver) == [(3, "XX3+None", 100)]

        pipe(driver, "left", "W", 10_000, KEYS[:1])
        pipe(driver, "right", "V", 10_000, KEYS[1:2])  # right records are never emitted alone
        assert out(driver) == []
        pipe(driver, "left", "U", 10_201, KEYS[1:2])
        assert out(driver) == [(0, "W0+None", 10_000)]
        assert driver.dead_letters() == []


def test_left_join_match_arriving_at_the_last_moment_prevents_the_unmatched_result():
    with TestDriver(join_app("left")) as driver:
        driver.pipe("left", 0, "A", timestamp=0)
        driver.pipe("left", 1, "adv", timestamp=200)  # A's window closes after 200
        assert out(driver) == []
        driver.pipe("right", 0, "y", timestamp=100)  # 100 + 100 = 200: on time, joins A
        assert out(driver) == [(0, "A+y", 100)]
        driver.pipe("left", 2, "adv2", timestamp=5000)
        assert out(driver) == [(1, "adv+None", 200)]  # no A+None, ever
        driver.pipe("left", 2, "adv3", timestamp=50_000)
        assert out(driver) == [(2, "adv2+None", 5000)]


def test_left_join_emits_each_unmatched_record_once_in_time_order():
    with TestDriver(join_app("left", window=JoinWindows.of(0.1, grace=0.1))) as driver:
        driver.pipe("left", 0, "A", timestamp=250)
        driver.pipe("left", 1, "B", timestamp=100)
        driver.pipe("left", 1, "C", timestamp=100)
        driver.pipe("left", 2, "D", timestamp=200)
        assert out(driver) == []
        driver.pipe("right", 9, "r", timestamp=1000)
        assert out(driver) == [
            (1, "B+None", 100),
            (1, "C+None", 100),
            (2, "D+None", 200),
            (0, "A+None", 250),
        ]
        driver.pipe("right", 9, "s", timestamp=2000)
        driver.pipe("left", 9, "t", timestamp=3000)
        assert out(driver) == []  # each once; r and s are right records of a left join
        assert driver.table(f"{STEP}-unmatched").items() == [((3000, "L", 9), [("L", "t")])]


def test_left_join_unmatched_record_whose_joiner_raises_is_dropped_and_the_join_goes_on():
    def joiner(left, right):
        if right is None and left == "bad":
            raise ValueError("bad has no match")
        return plus(left, right)

    with TestDriver(join_app("left", joiner=joiner)) as driver:
        driver.pipe("left", 0, "bad", timestamp=0)
        driver.pipe("left", 1, "ok", timestamp=0)
        driver.pipe("left", 2, "adv", timestamp=1000)
        # "bad" was consumed by an earlier batch: its result is dropped (and logged), not
        # the record that closed its window.
        assert out(driver) == [(1, "ok+None", 0)]
        assert driver.dead_letters() == []
        driver.pipe("right", 2, "y", timestamp=1000)  # the join goes on
        assert out(driver) == [(2, "adv+y", 1000)]


# --- outer joins ---------------------------------------------------------------------------


def test_outer_join_emits_the_unmatched_records_of_both_sides():
    # KStreamKStreamOuterJoinTest: X+None and None+Y once the windows closed.
    with TestDriver(join_app("outer")) as driver:
        driver.pipe("left", 0, "A", timestamp=0)
        driver.pipe("right", 1, "y", timestamp=50)
        driver.pipe("left", 2, "B", timestamp=60)
        driver.pipe("right", 2, "z", timestamp=70)
        assert out(driver) == [(2, "B+z", 70)]

        driver.pipe("right", 9, "adv", timestamp=250)  # A closes after 200, y after 250
        assert out(driver) == [(0, "A+None", 0)]
        driver.pipe("left", 8, "adv2", timestamp=260)  # B and z matched: never emitted
        assert out(driver) == [(1, "None+y", 50)]

        driver.pipe("left", 7, "adv3", timestamp=10_000)
        assert out(driver) == [(9, "None+adv", 250), (8, "adv2+None", 260)]
        assert driver.dead_letters() == []


def test_outer_join_pairs_all_records_and_emits_no_spurious_unmatched_results():
    with TestDriver(join_app("outer")) as driver:
        pipe(driver, "left", "X", 0, KEYS[:2])
        pipe(driver, "right", "Y", 0, KEYS[:1])
        pipe(driver, "right", "Y", 0, KEYS[2:3])
        assert out(driver) == [(0, "X0+Y0", 0)]
        pipe(driver, "left", "XX", 0, KEYS[2:3])
        assert out(driver) == [(2, "XX2+Y2", 0)]
        pipe(driver, "right", "YY", 0, KEYS[1:2])  # X1 was waiting unmatched
        assert out(driver) == [(1, "X1+YY1", 0)]

        pipe(driver, "left", "L", 1000, KEYS[3:])
        assert out(driver) == []  # every record of time 0 matched
        pipe(driver, "right", "R", 1201, KEYS[3:])  # out of L3's window: no pair
        assert out(driver) == [(3, "L3+None", 1000)]


def test_outer_join_asymmetric_window_closes_after_before_plus_after_plus_grace():
    window = JoinWindows(before=0.05, after=0.2, grace=0.1)  # span 250 + grace 100
    with TestDriver(join_app("outer", window=window)) as driver:
        driver.pipe("left", 0, "A", timestamp=1000)
        driver.pipe("right", 1, "b", timestamp=1000)
        driver.pipe("right", 9, "adv", timestamp=1350)
        assert out(driver) == []
        # a right record at 1200 (within A's after) is still on time: 1200 + 50 + 100 = 1350
        driver.pipe("right", 0, "c", timestamp=1200)
        assert out(driver) == [(0, "A+c", 1200)]
        driver.pipe("right", 9, "adv2", timestamp=1351)
        assert out(driver) == [(1, "None+b", 1000)]  # A matched, b did not


def test_outer_join_emits_closed_windows_before_the_results_of_the_record_closing_them():
    # Kafka Streams emits the unmatched records whose window the incoming record closed
    # first, then the incoming record's joins (they are older, too).
    with TestDriver(join_app("outer")) as driver:
        driver.pipe("left", 0, "A", timestamp=0)
        driver.pipe("left", 1, "B", timestamp=150)
        driver.pipe("right", 1, "y", timestamp=201)  # closes A's window and joins B
        assert out(driver) == [(0, "A+None", 0), (1, "B+y", 201)]
