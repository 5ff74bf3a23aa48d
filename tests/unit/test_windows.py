"""Windowed aggregations: window placement, late records, the windowed key codec."""

from __future__ import annotations

import pytest

from streamflow import App, Windowed, hopping, tumbling
from streamflow.codecs import IntCodec, StrCodec
from streamflow.codecs.windowed import WindowedCodec
from streamflow.runtime.batch import BatchContext
from streamflow.runtime.processors import compile_node


def _windowed_count(windows):
    app = App("w")
    table = (
        app.stream(app.topic("clicks"))
        .group_by(lambda k, v: v["user"])
        .windowed_by(windows)
        .count(name="clicks-per-window")
    )
    out: list = []
    push = compile_node(table._node, terminal=lambda records, ctx: out.extend(records))
    return push, out


def _records(*timestamps: int, user: str = "u1"):
    return [(user, {"user": user}, ts, i) for i, ts in enumerate(timestamps)]


def test_tumbling_windows_count_per_window():
    push, out = _windowed_count(tumbling(10))
    ctx = BatchContext.for_tests()
    push(_records(1_000, 9_999, 10_000, 25_000), ctx)
    counts = ctx.table("clicks-per-window").updated
    assert counts == {
        Windowed("u1", 0, 10_000): 2,
        Windowed("u1", 10_000, 20_000): 1,
        Windowed("u1", 20_000, 30_000): 1,
    }
    assert [(w.start, n) for w, n, _, _ in out] == [(0, 1), (0, 2), (10_000, 1), (20_000, 1)]


def test_hopping_windows_hold_a_record_in_each_overlapping_window():
    push, _ = _windowed_count(hopping(10, advance=5))
    ctx = BatchContext.for_tests()
    push(_records(7_000), ctx)
    assert set(ctx.table("clicks-per-window").updated) == {
        Windowed("u1", 0, 10_000),
        Windowed("u1", 5_000, 15_000),
    }


def test_late_records_are_dropped_after_the_grace_period():
    push, _ = _windowed_count(tumbling(10, grace=2))
    ctx = BatchContext.for_tests()
    push(_records(1_000, 21_000, 11_500, 5_000), ctx)
    # At stream time 21s, [10s, 20s) still takes records (closes at 22s); [0s, 10s) does not.
    counts = ctx.table("clicks-per-window").updated
    assert counts == {
        Windowed("u1", 0, 10_000): 1,
        Windowed("u1", 10_000, 20_000): 1,
        Windowed("u1", 20_000, 30_000): 1,
    }
    assert ctx.dropped == 1
    # Stream time carries over to the next batch of the partition.
    later = BatchContext.for_tests()
    push(_records(9_000), later)
    assert later.dropped == 1


def test_a_failing_aggregator_touches_none_of_the_records_windows():
    app = App("w")
    table = (
        app.stream(app.topic("clicks"))
        .group_by(lambda k, v: v["user"])
        .windowed_by(hopping(10, advance=5))
        .aggregate(lambda: 0, lambda k, v, n: n + 1 / v["weight"], name="weighted")
    )
    push = compile_node(table._node, terminal=lambda records, ctx: None)
    ctx = BatchContext.for_tests()
    push([("u1", {"weight": 0}, 7_000, 0), ("u1", {"weight": 1}, 7_000, 1)], ctx)
    assert [f.source_index for f in ctx.failures] == [0]
    assert set(ctx.table("weighted").updated.values()) == {1}


@pytest.mark.parametrize("inner,key", [(StrCodec(), "user-1"), (IntCodec(), 42)])
def test_windowed_keys_round_trip_and_sort_by_key_then_start(inner, key):
    codec = WindowedCodec(inner, size_ms=60_000)
    early, late = Windowed(key, 60_000, 120_000), Windowed(key, 120_000, 180_000)
    assert codec.decode(codec.encode(late)) == late
    assert codec.encode(early) < codec.encode(late)
    assert codec.encode(early).startswith(codec.prefix(key))
    assert codec.from_json(codec.to_json(late)) == late


def test_windows_reject_nonsense():
    with pytest.raises(ValueError):
        hopping(10, advance=20)
    with pytest.raises(ValueError):
        tumbling(0)
