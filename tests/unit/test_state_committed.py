"""Committed reads of the RocksDB store: what table views see under exactly-once."""

from __future__ import annotations


def test_reads_see_the_last_checkpoint_until_the_next_one(store):
    store.write_raw(1, {b"a": b"1", b"b": b"1"})
    # Nothing committed yet: the keys do not exist for committed readers...
    assert store.get_committed(1, b"a") is None
    assert list(store.iter_committed(1)) == []
    # ...while processing reads its own writes.
    assert store.get_raw(1, b"a") == b"1"

    store.checkpoint(1)
    assert store.get_committed(1, b"a") == b"1"

    store.write_raw(1, {b"a": b"2", b"c": b"2"})
    store.write_raw(1, {b"a": b"3"})  # a second write in the same transaction
    assert store.get_committed(1, b"a") == b"1"
    assert store.get_committed(1, b"c") is None
    assert list(store.iter_committed(1)) == [(b"a", b"1"), (b"b", b"1")]

    store.checkpoint(1)
    assert store.get_committed(1, b"a") == b"3"
    assert list(store.iter_committed(1)) == [(b"a", b"3"), (b"b", b"1"), (b"c", b"2")]


def test_deleted_keys_stay_visible_until_committed(store):
    store.write_raw(0, {b"k1": b"x", b"k2": b"y", b"k3": b"z"})
    store.checkpoint(0)
    store.write_raw(0, {b"k2": None})
    assert store.get_committed(0, b"k2") == b"y"
    assert [k for k, _ in store.iter_committed(0)] == [b"k1", b"k2", b"k3"]
    store.checkpoint(0)
    assert [k for k, _ in store.iter_committed(0)] == [b"k1", b"k3"]


def test_iteration_starts_at_a_key_and_can_leave_it_out(store):
    store.write_raw(2, {b"user-%02d" % i: b"v" for i in range(10)})
    store.checkpoint(2)
    store.write_raw(2, {b"user-05": b"new", b"user-055": b"new"})
    keys = [k for k, _ in store.iter_committed(2, b"user-05")]
    assert keys == [b"user-05", b"user-06", b"user-07", b"user-08", b"user-09"]
    after = [k for k, _ in store.iter_committed(2, b"user-05", after=True)]
    assert after == keys[1:]
    assert dict(store.iter_committed(2))[b"user-05"] == b"v"


def test_partitions_are_independent(store):
    store.write_raw(0, {b"k": b"0"})
    store.write_raw(3, {b"k": b"3"})
    store.checkpoint(3)
    assert store.get_committed(0, b"k") is None
    assert store.get_committed(3, b"k") == b"3"
