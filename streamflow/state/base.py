"""The one small interface every table store implements, and committed reads shared by all.

A table store holds a table's partitions as raw bytes (keys and values encoded by the
table's codecs). The batch runtime reads and writes through it while processing; table
views read *committed* state only, through :meth:`TableStore.get_committed` and
:meth:`TableStore.iter_committed`. Two implementations: RocksDB
(:class:`streamflow.state.rocksdb.RocksDBStore`, what workers use) and memory
(:class:`streamflow.state.memory.MemoryStore`, what the test driver uses).

Example:
    >>> from streamflow.state.memory import MemoryStore
    >>> store: TableStore = MemoryStore()
    >>> store.write_raw(0, {b"alice": b"5"})
    >>> store.get_raw(0, b"alice"), store.get_committed(0, b"alice")
    (b'5', None)
    >>> store.checkpoint(0)
    >>> store.get_committed(0, b"alice")
    b'5'
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["BeforeImages", "TableStore"]


@runtime_checkable
class TableStore(Protocol):
    """A table's partitions of raw key/value bytes, written in batches, read committed.

    A write makes a partition *dirty* until :meth:`checkpoint` records that the
    transaction carrying the write has committed; committed reads answer what the
    partition held at its last checkpoint.
    """

    def get_raw(self, partition: int, key: bytes) -> bytes | None:
        """The stored bytes of ``key`` in ``partition`` (uncommitted writes included)."""
        ...

    def raw_keys(self, partition: int) -> Iterator[bytes]:
        """Every stored key of ``partition`` in key order (uncommitted writes included)."""
        ...

    def raw_items(
        self, partition: int, start: bytes, end: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        """Stored ``(key, value)`` pairs with ``start <= key < end``, in key order."""
        ...

    def write_raw(self, partition: int, items: Mapping[bytes, bytes | None]) -> None:
        """Write ``items`` to ``partition`` atomically; a ``None`` value deletes the key."""
        ...

    def get_committed(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` as of ``partition``'s last checkpoint, or ``None``."""
        ...

    def iter_committed(
        self, partition: int, start: bytes = b"", *, after: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed ``(key, value)`` pairs in key order from ``start`` (excluded if ``after``)."""
        ...

    def open_partitions(self) -> list[int]:
        """The partitions this store holds open."""
        ...

    def checkpoint(self, partition: int) -> None:
        """Record that every write to ``partition`` so far belongs to a committed transaction."""
        ...

    def is_dirty(self, partition: int) -> bool:
        """True while ``partition`` has writes not yet checkpointed."""
        ...


class BeforeImages:
    """The committed values of keys written since each partition's last checkpoint.

    The first write to a key after a checkpoint keeps the key's previous bytes (its
    *before-image*, ``None`` for a key that did not exist); committed reads answer from the
    before-images until the checkpoint drops them.

    >>> images = BeforeImages()
    >>> stored = {b"a": b"1"}
    >>> images.keep(0, [b"a", b"b"], lambda keys: [stored.get(k) for k in keys])
    >>> stored.update({b"a": b"2", b"b": b"9"})
    >>> images.get(0, b"a", stored.get), images.get(0, b"b", stored.get)
    (b'1', None)
    >>> list(images.merge(0, iter(sorted(stored.items()))))
    [(b'a', b'1')]
    >>> images.drop(0)
    >>> list(images.merge(0, iter(sorted(stored.items()))))
    [(b'a', b'2'), (b'b', b'9')]
    """

    __slots__ = ("_by_partition",)

    def __init__(self) -> None:
        self._by_partition: dict[int, dict[bytes, bytes | None]] = {}

    def keep(
        self,
        partition: int,
        keys: Iterable[bytes],
        read_many: Callable[[list[bytes]], Sequence[bytes | None]],
    ) -> None:
        """Remember the current bytes of the ``keys`` not remembered yet (call before writing)."""
        before = self._by_partition.setdefault(partition, {})
        new_keys = [key for key in keys if key not in before]
        if new_keys:
            before.update(zip(new_keys, read_many(new_keys), strict=True))

    def get(
        self, partition: int, key: bytes, read: Callable[[bytes], bytes | None]
    ) -> bytes | None:
        """The committed bytes of ``key``: its before-image, else what ``read`` gives."""
        before = self._by_partition.get(partition)
        if before and key in before:
            return before[key]
        return read(key)

    def merge(
        self,
        partition: int,
        stored: Iterator[tuple[bytes, bytes]],
        start: bytes = b"",
        *,
        after: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed pairs from ``stored`` (pairs in key order from ``start``) and the images."""
        before = self._by_partition.get(partition) or {}
        current = ((key, value) for key, value in stored if key not in before)
        replaced = sorted((k, v) for k, v in before.items() if v is not None and k >= start)
        for key, value in heapq.merge(current, replaced):
            if not (after and key == start):
                yield key, value

    def drop(self, partition: int) -> None:
        """Forget ``partition``'s images: its writes so far are committed."""
        self._by_partition.pop(partition, None)
