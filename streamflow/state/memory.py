"""An in-memory table store: the :class:`~streamflow.state.base.TableStore` of the test driver.

Partitions are dicts of raw bytes with their keys kept sorted, so scans come out in the
same (bytewise) key order as RocksDB's; committed reads work as in the RocksDB store.

Example:
    >>> store = MemoryStore()
    >>> store.write_raw(3, {b"b": b"2", b"a": b"1"})
    >>> list(store.raw_keys(3))
    [b'a', b'b']
    >>> store.write_raw(3, {b"a": None})
    >>> list(store.raw_keys(3)), store.is_dirty(3)
    ([b'b'], True)
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping

from streamflow.state.base import BeforeImages

__all__ = ["MemoryStore"]


class _Partition:
    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []  # sorted

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        if self.values.pop(key, None) is not None:
            del self.keys[bisect_left(self.keys, key)]

    def items(self, start: bytes, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        first = bisect_left(self.keys, start)
        last = len(self.keys) if end is None else bisect_left(self.keys, end)
        values = self.values
        return ((key, values[key]) for key in self.keys[first:last])


class MemoryStore:
    """Table partitions in memory behind the same interface as the RocksDB store.

    >>> store = MemoryStore()
    >>> store.write_raw(0, {b"k": b"v"})
    >>> store.open_partitions(), store.get_raw(0, b"k")
    ([0], b'v')
    """

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._dirty: set[int] = set()
        self._before = BeforeImages()

    def _partition(self, partition: int) -> _Partition:
        found = self._partitions.get(partition)
        if found is None:
            found = self._partitions[partition] = _Partition()
        return found

    def get_raw(self, partition: int, key: bytes) -> bytes | None:
        """The stored bytes of ``key`` in ``partition``, or ``None``."""
        return self._partition(partition).values.get(key)

    def raw_keys(self, partition: int) -> Iterator[bytes]:
        """Every stored key of ``partition`` in key order (a snapshot: writes may follow)."""
        return iter(list(self._partition(partition).keys))

    def raw_items(
        self, partition: int, start: bytes, end: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        """Stored pairs of ``partition`` with ``start <= key < end``, in key order."""
        return iter(list(self._partition(partition).items(start, end)))

    def write_raw(self, partition: int, items: Mapping[bytes, bytes | None]) -> None:
        """Write ``items`` (``None`` deletes) to ``partition``."""
        if not items:
            return
        data = self._partition(partition)
        self._before.keep(partition, items, lambda keys: [data.values.get(k) for k in keys])
        self._dirty.add(partition)
        for key, value in items.items():
            if value is None:
                data.delete(key)
            else:
                data.put(key, value)

    def get_committed(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` as of the last checkpoint, or ``None``."""
        return self._before.get(partition, key, self._partition(partition).values.get)

    def iter_committed(
        self, partition: int, start: bytes = b"", *, after: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed pairs of ``partition`` in key order from ``start`` on."""
        stored = self._partition(partition).items(start)
        return self._before.merge(partition, stored, start, after=after)

    def open_partitions(self) -> list[int]:
        """Partitions written or read so far."""
        return sorted(self._partitions)

    def checkpoint(self, partition: int) -> None:
        """Mark every write to ``partition`` so far committed."""
        self._before.drop(partition)
        self._dirty.discard(partition)

    def is_dirty(self, partition: int) -> bool:
        """True while ``partition`` has writes not checkpointed."""
        return partition in self._dirty
