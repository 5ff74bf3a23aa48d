"""The table store contract, on both stores: committed reads, key order, dirty partitions.

What table views see under exactly-once; the test driver's in-memory store must behave as
the workers' RocksDB store does.
"""

from __future__ import annotations

import pytest

from streamflow.state import MemoryStore, TableStore


@pytest.fixture(params=["rocksdb", "memory"])
def any_store(request) -> TableStore:
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("store")


def test_both_stores_implement_the_interface(any_store):
    assert isinstance(any_store, TableStore)


def test_keys_come_in_byte_order_and_writes_mark_partitions_dirty(any_store):
    any_store.write_raw(1, {b"b": b"2", b"a\xff": b"1", b"a": b"0"})
    assert list(any_store.raw_keys(1)) == [b"a", b"a\xff", b"b"]
    assert any_store.is_dirty(1) and not any_store.is_dirty(2)
    assert 1 in any_store.open_partitions()
    any_store.checkpoint(1)
    assert not any_store.is_dirty(1)
    any_store.write_raw(1, {b"a": None, b"zz": None})  # deleting a missing key is fine
    assert list(any_store.raw_keys(1)) == [b"a\xff", b"b"]
    assert any_store.get_raw(1, b"a") is None


def test_reads_see_the_last_checkpoint_until_the_next_one(any_store):
    any_store.write_raw(1, {b"a": b"1", b"b": b"1"})
    # Nothing committed yet: the keys do not exist for committed readers...
    assert any_store.get_committed(1, b"a") is None
    assert list(any_store.iter_committed(1)) == []
    # ...while processing reads its own writes.
    assert any_store.get_raw(1, b"a") == b"1"

    any_store.checkpoint(1)
    assert any_store.get_committed(1, b"a") == b"1"

    any_store.write_raw(1, {b"a": b"2", b"c": b"2"})
    any_store.write_raw(1, {b"a": b"3"})  # a second write in the same transaction
    assert any_store.get_committed(1, b"a") == b"1"
    assert any_store.get_committed(1, b"c") is None
    assert list(any_store.iter_committed(1)) == [(b"a", b"1"), (b"b", b"1")]

    any_store.checkpoint(1)
    assert any_store.get_committed(1, b"a") == b"3"
    assert list(any_store.iter_committed(1)) == [(b"a", b"3"), (b"b", b"1"), (b"c", b"2")]


def test_deleted_keys_stay_visible_until_committed(any_store):
    any_store.write_raw(0, {b"k1": b"x", b"k2": b"y", b"k3": b"z"})
    any_store.checkpoint(0)
    any_store.write_raw(0, {b"k2": None})
    assert any_store.get_committed(0, b"k2") == b"y"
    assert [k for k, _ in any_store.iter_committed(0)] == [b"k1", b"k2", b"k3"]
    any_store.checkpoint(0)
    assert [k for k, _ in any_store.iter_committed(0)] == [b"k1", b"k3"]


def test_iteration_starts_at_a_key_and_can_leave_it_out(any_store):
    any_store.write_raw(2, {b"user-%02d" % i: b"v" for i in range(10)})
    any_store.checkpoint(2)
    any_store.write_raw(2, {b"user-05": b"new", b"user-055": b"new"})
    keys = [k for k, _ in any_store.iter_committed(2, b"user-05")]
    assert keys == [b"user-05", b"user-06", b"user-07", b"user-08", b"user-09"]
    after = [k for k, _ in any_store.iter_committed(2, b"user-05", after=True)]
    assert after == keys[1:]
    assert dict(any_store.iter_committed(2))[b"user-05"] == b"v"


def test_partitions_are_independent(any_store):
    any_store.write_raw(0, {b"k": b"0"})
    any_store.write_raw(3, {b"k": b"3"})
    any_store.checkpoint(3)
    assert any_store.get_committed(0, b"k") is None
    assert any_store.get_committed(3, b"k") == b"3"
