"""Windowed aggregations: window placement, late records, the windowed key codec."""

from __future__ import annotations

import pytest

from streamflow import App, Windowed, hopping, tumbling
from streamflow.codecs import IntCodec, StrCodec
from streamflow.codecs.windowed import WindowedCodec
from streamflow.runtime.batch import DELETED, MISSING, BatchContext, TableBatch
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
    # Stream time carries over to the next batch of the partition, once this one is written.
    ctx.written()
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
    with pytest.raises(ValueError, match="at least the window size plus grace"):
        tumbling(60, grace=10, retention=65)


def test_retention_defaults_to_a_day_or_size_plus_grace():
    assert tumbling(60).retention_ms == 86_400_000
    assert tumbling(86_400, grace=60).retention_ms == 86_460_000
    assert hopping(60, advance=30, retention=120).retention_ms == 120_000


class _StoredPartition:
    """A windowed table partition held in a dict of stored bytes, as the store keeps it."""

    def __init__(self, codec: WindowedCodec, windows: dict[Windowed, int]) -> None:
        self.codec = codec
        self.stored = {codec.encode(w): n for w, n in windows.items()}

    def context(self) -> BatchContext:
        def read(window):
            return self.stored.get(self.codec.encode(window), MISSING)

        def table(name):
            return TableBatch({}, read, lambda: sorted(self.stored), self.codec.decode)

        return BatchContext(0, table)

    def write(self, ctx: BatchContext, name: str) -> None:
        for window, value in ctx.table(name).updated.items():
            if value is DELETED:
                del self.stored[self.codec.encode(window)]
            else:
                self.stored[self.codec.encode(window)] = value


def test_windows_are_deleted_once_stream_time_passes_their_retention():
    codec = WindowedCodec(StrCodec(), size_ms=10_000)
    partition = _StoredPartition(
        codec, {Windowed("u1", 0, 10_000): 3, Windowed("u2", 20_000, 30_000): 1}
    )
    push, _ = _windowed_count(tumbling(10, retention=30))
    ctx = partition.context()
    push(_records(30_000), ctx)  # [0s,10s) expires at 30s of stream time; [20s,30s) at 50s
    partition.write(ctx, "clicks-per-window")
    assert ctx.table("clicks-per-window").updated[Windowed("u1", 0, 10_000)] is DELETED
    assert set(map(codec.decode, partition.stored)) == {
        Windowed("u2", 20_000, 30_000),
        Windowed("u1", 30_000, 40_000),
    }
    later = partition.context()
    push(_records(55_000), later)  # a sweep runs every tenth of the retention, at least
    partition.write(later, "clicks-per-window")
    assert set(map(codec.decode, partition.stored)) == {
        Windowed("u1", 30_000, 40_000),
        Windowed("u1", 50_000, 60_000),
    }


def test_stream_time_is_restored_from_the_stored_windows_after_a_restart():
    codec = WindowedCodec(StrCodec(), size_ms=10_000)
    partition = _StoredPartition(codec, {Windowed("u1", 40_000, 50_000): 2})
    push, _ = _windowed_count(tumbling(10, retention=3600))  # fresh: no stream time yet
    ctx = partition.context()
    push(_records(12_000, 45_000), ctx)
    assert ctx.dropped == 1  # [10s, 20s) closed at 20s < 40s, the restored stream time
    assert ctx.table("clicks-per-window").updated == {Windowed("u1", 40_000, 50_000): 3}
