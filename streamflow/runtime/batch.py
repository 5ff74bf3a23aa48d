"""What one batch carries through the operators: outputs, failures and table updates.

Example:
    >>> from streamflow.runtime.batch import BatchContext
    >>> ctx = BatchContext.for_tests()
    >>> ctx.fail(0, ValueError("bad"), "filter-1")
    >>> ctx.failures[0].step
    'filter-1'
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from streamflow.topics import Topic

__all__ = [
    "DELETED",
    "MISSING",
    "BatchContext",
    "Failure",
    "Push",
    "Record",
    "TableBatch",
    "detached",
]

#: A record inside a batch: ``(key, value, timestamp_ms, source_index)``.
Record = tuple[Any, Any, int, int]

# Values of these types cannot change in place; anything else is copied by ``detached``.
_IMMUTABLE = (int, float, Decimal, str, bytes, bool, tuple, frozenset, type(None))


def detached(value: Any) -> Any:
    """``value``, or a deep copy of it if it could change in place: what goes downstream
    (or to user code) must not alias what a table holds.

    >>> state = {"n": 1}
    >>> detached(state) is state, detached(5)
    (False, 5)
    """
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _Deleted:
    def __repr__(self) -> str:
        return "<deleted>"


#: The value of a key a batch deleted (written as a tombstone to the changelog).
DELETED: Any = _Deleted()


@dataclass
class Failure:
    """A consumed record that could not be processed, and why."""

    source_index: int
    error: BaseException
    step: str


class TableBatch:
    """One table partition as seen by one batch: cached reads and the keys it updated.

    ``cache`` outlives the batch (it is the partition's read cache); ``read(key)`` loads a
    key from the store and returns :data:`MISSING` when absent. ``stored_keys()`` lists the
    partition's stored keys as bytes and ``decode_key`` turns one back into a key (for
    sweeps such as window retention).

    >>> table = TableBatch(cache={}, read=lambda key: MISSING)
    >>> table.load("alice", lambda: 0)
    0
    >>> table.updated["alice"] = 5
    >>> table.load("alice", lambda: 0)
    5
    >>> table.delete("alice")
    >>> table.load("alice", lambda: 0)
    0
    """

    __slots__ = ("cache", "decode_key", "read", "scan_raw", "stored_keys", "updated")

    def __init__(
        self,
        cache: dict[Any, Any],
        read: Callable[[Any], Any],
        stored_keys: Callable[[], Iterable[bytes]] = tuple,
        decode_key: Callable[[bytes], Any] = bytes,
        scan_raw: Callable[[bytes, bytes], Iterable[tuple[Any, Any]]] = lambda start, end: (),
    ) -> None:
        self.cache = cache
        self.read = read
        self.stored_keys = stored_keys
        self.decode_key = decode_key
        #: ``scan_raw(start, end)``: decoded ``(key, value)`` pairs of the stored keys whose
        #: bytes are in ``[start, end)``, in key order.
        self.scan_raw = scan_raw
        self.updated: dict[Any, Any] = {}

    def scan_stored(self, start: bytes, end: bytes) -> list[tuple[Any, Any]]:
        """Stored pairs with encoded keys in ``[start, end)`` this batch has not written.

        The caller overlays what the batch wrote (it knows those keys).
        """
        updated = self.updated
        return [(k, v) for k, v in self.scan_raw(start, end) if k not in updated]

    def load(self, key: Any, initializer: Callable[[], Any]) -> Any:
        """The current aggregate of ``key``, or ``initializer()`` for a new key."""
        value = self.updated.get(key, MISSING)
        if value is MISSING:
            value = self.cache.get(key, MISSING)
            if value is MISSING:
                value = self.read(key)
                if value is MISSING:
                    return initializer()
                self.cache[key] = value
        elif value is DELETED:
            return initializer()
        return value

    def delete(self, key: Any) -> None:
        """Delete ``key`` from the table when the batch is written."""
        self.updated[key] = DELETED


@dataclass
class BatchContext:
    """Collects a batch's effects for one source partition until they are written together."""

    partition: int
    tables: Callable[[str], TableBatch]
    #: Encoded records per topic (and partition, for records routed to one): ``(topic,
    #: records, partition or None)``; ``None``: the key picks the partition.
    outputs: dict[
        str | tuple[str, int],
        tuple[Topic, list[tuple[bytes | None, bytes | None, int]], int | None],
    ] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    touched_tables: dict[str, TableBatch] = field(default_factory=dict)
    dropped: int = 0
    #: Late records dropped, by the step they were late for.
    late: dict[str, int] = field(default_factory=dict)
    #: ``global_table(name)``: the state of a global table (see
    #: :mod:`streamflow.runtime.global_tables`), for joins.
    global_table: Callable[[str], Any] = field(default=lambda name: None)
    #: ``now_ms()``: wall-clock time (the worker's clock; the test driver's in tests).
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    #: ``headers_of(source_index)``: the headers of a consumed record of the batch.
    headers_of: Callable[[int], list[tuple[str, bytes]]] = field(default=lambda index: [])
    #: Per-batch working state of operators, by step name (dropped with the batch).
    scratch: dict[str, Any] = field(default_factory=dict)
    #: Changes of operator state kept outside tables (a partition's stream time), applied
    #: once the batch is written: a batch run again, or not written, leaves them undone.
    after_write: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def for_tests(cls, partition: int = 0) -> BatchContext:
        """A context whose tables start empty and live in memory."""
        caches: dict[str, dict[Any, Any]] = {}
        return cls(partition, lambda name: TableBatch(caches.setdefault(name, {}), _absent))

    def output(
        self, topic: Topic, partition: int | None = None
    ) -> list[tuple[bytes | None, bytes | None, int]]:
        """The list of encoded ``(key, value, timestamp)`` records bound for ``topic`` (for
        its ``partition``, if given; else each record's key picks one)."""
        slot = topic.name if partition is None else (topic.name, partition)
        entry = self.outputs.get(slot)
        if entry is None:
            entry = self.outputs[slot] = (topic, [], partition)
        return entry[1]

    def table(self, name: str) -> TableBatch:
        """The batch view of table ``name`` in this context's partition."""
        table = self.touched_tables.get(name)
        if table is None:
            table = self.touched_tables[name] = self.tables(name)
        return table

    def written(self) -> None:
        """Apply the :attr:`after_write` changes: the batch's effects have been written."""
        for apply in self.after_write:
            apply()
        self.after_write.clear()

    def fail(self, source_index: int, error: BaseException, step: str) -> None:
        """Record that the consumed record ``source_index`` failed in ``step``."""
        self.failures.append(Failure(source_index, error, step))


def _absent(key: Any) -> Any:
    return MISSING


#: An operator: takes a batch's records (and its context) and pushes its own downstream.
Push = Callable[[list[Record], BatchContext], None]
