"""RocksDB table storage (through rocksdict) with exactly-once checkpoints.

Builds on faust's RocksDB store, so faust keeps doing what it does well (one database per
partition, changelog recovery, standby replicas), and adds what exactly-once needs:

* a partition's database is marked *dirty* (a ``.dirty`` file beside it) before the first
  write of a transaction and marked clean once that transaction has committed;
* a dirty database may hold writes of a transaction that never committed, so it is wiped
  when opened and rebuilt from the changelog, which only shows committed records under
  ``read_committed``. This is Kafka Streams' rule for state after an unclean shutdown;
* reads from outside the processing path (table views) see *committed* state only: the
  first write of a transaction to a key keeps the key's previous value aside (its
  before-image), and committed reads answer from the before-images until the transaction
  commits and :meth:`RocksDBStore.checkpoint` drops them.

Example:
    The runtime registers the store under the URL scheme ``streamflow-rocksdb``; tables
    use it through :class:`streamflow.state.TableState`, never directly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from faust.stores import STORES
from faust.stores.rocksdb import Store as FaustRocksDBStore
from rocksdict import WriteBatch

from streamflow.state.base import BeforeImages

__all__ = ["STORE_SCHEME", "RocksDBStore", "register"]

STORE_SCHEME = "streamflow-rocksdb"


class RocksDBStore(FaustRocksDBStore):
    """A faust RocksDB store with partition-level reads, batched writes and checkpoints.

    Implements :class:`streamflow.state.base.TableStore`.

    >>> register()  # makes "streamflow-rocksdb://" usable as a faust store URL
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._dirty: set[int] = set()
        self._before = BeforeImages()

    # --- partition-level access used by the batch runtime -------------------------------

    def get_raw(self, partition: int, key: bytes) -> bytes | None:
        """The stored bytes of ``key`` in ``partition``, or ``None``."""
        return self._db_for_partition(partition).get(key)

    def raw_keys(self, partition: int) -> Iterator[bytes]:
        """Every stored key of ``partition`` in key order (uncommitted writes included)."""
        return self._db_for_partition(partition).keys()

    def raw_items(
        self, partition: int, start: bytes, end: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        """Stored pairs of ``partition`` with ``start <= key < end`` (uncommitted included)."""
        for key, value in self._db_for_partition(partition).items(from_key=start):
            if key >= end:
                return
            yield key, value

    def write_raw(self, partition: int, items: Mapping[bytes, bytes | None]) -> None:
        """Write ``items`` (``None`` deletes) to ``partition`` atomically."""
        if not items:
            return
        self._mark_dirty(partition)
        db = self._db_for_partition(partition)
        self._before.keep(partition, items, db.get)
        batch = WriteBatch(raw_mode=True)
        for key, value in items.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        db.write(batch)

    def get_committed(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` as of the last committed transaction, or ``None``."""
        return self._before.get(partition, key, self._db_for_partition(partition).get)

    def iter_committed(
        self, partition: int, start: bytes = b"", *, after: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed ``(key, value)`` pairs of ``partition`` in key order, from ``start`` on.

        With ``after=True``, ``start`` itself is left out (for paging with a cursor).
        """
        stored = self._db_for_partition(partition).items(from_key=start)
        return self._before.merge(partition, stored, start, after=after)

    def open_partitions(self) -> list[int]:
        """Partitions whose database is open on this worker."""
        return sorted(self._dbs)

    def checkpoint(self, partition: int) -> None:
        """Record that every write to ``partition`` so far belongs to a committed transaction.

        No changelog offset is persisted: recovery replays the partition's compacted
        changelog from its start, which is correct whatever happened to open transactions
        of other workers (their records are never read under ``read_committed``).
        """
        self._before.drop(partition)
        if partition not in self._dirty:
            return
        self._dirty.discard(partition)
        self._dirty_marker(partition).unlink(missing_ok=True)

    def persisted_offset(self, tp) -> None:
        """Always ``None``: recovery replays the compacted changelog from its start.

        faust would otherwise resume from an offset it persisted while replicating, and
        refuse to start when a transaction left open by a previous owner hides that offset
        from ``read_committed`` readers for a moment.
        """
        return None

    def set_persisted_offset(self, tp, offset: int) -> None:
        """Ignored; see :meth:`persisted_offset`."""

    def is_dirty(self, partition: int) -> bool:
        """True while ``partition`` has writes of a transaction that has not committed."""
        return partition in self._dirty

    # --- dirty markers -----------------------------------------------------------------

    def _dirty_marker(self, partition: int) -> Path:
        path = self.partition_path(partition)
        return path.with_name(path.name + ".dirty")

    def _mark_dirty(self, partition: int) -> None:
        if partition in self._dirty:
            return
        marker = self._dirty_marker(partition)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        self._dirty.add(partition)

    def _open_for_partition(self, partition: int):
        marker = self._dirty_marker(partition)
        if marker.exists():
            self.log.warning(
                "Partition %d of table %s was not cleanly committed: "
                "wiping local state to rebuild it from the changelog",
                partition,
                self.table.name,
            )
            shutil.rmtree(self.partition_path(partition), ignore_errors=True)
            marker.unlink(missing_ok=True)
        return super()._open_for_partition(partition)

    def revoke_partitions(self, table, tps) -> None:
        # A revoked partition keeps its marker if still dirty: the next open rebuilds it.
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._dirty.discard(tp.partition)
                self._before.drop(tp.partition)
        super().revoke_partitions(table, tps)


def register() -> None:
    """Make ``streamflow-rocksdb://`` resolve to :class:`RocksDBStore` in faust."""
    STORES.aliases[STORE_SCHEME] = f"{__name__}:RocksDBStore"
