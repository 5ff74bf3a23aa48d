"""Idempotent-producer bookkeeping for one partition.

Tracks, per producer id, the current epoch, the last five appended batches (for duplicate
detection of retries) and the first offset of an open transaction. Snapshots are written as
JSON next to the log; on startup the snapshot is loaded and the log after it is replayed.

Example:
    >>> ps = ProducerStateTable()
    >>> ps.check(pid=1, epoch=0, first_seq=0, last_seq=9)
    (0, None)
    >>> ps.record(1, 0, 0, 9, base_offset=100, last_offset=109, transactional=False)
    >>> ps.check(1, 0, 0, 9)  # a retry of the same batch
    (0, 100)
    >>> int(ps.check(1, 0, 20, 29)[0])  # a gap
    45
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ErrorCode
from .log import fsync_dir

MAX_CACHED_BATCHES = 5
PRODUCER_EXPIRATION_MS = 7 * 24 * 3600 * 1000
"""Idle producers (no open transaction) are forgotten after this long, like Kafka's
``producer.id.expiration.ms``; a later retry from them is accepted as a new sequence."""


@dataclass
class ProducerEntry:
    """State of one producer id on one partition.

    Example:
        >>> ProducerEntry(epoch=3).last_seq
        -1
    """

    epoch: int
    batches: deque[tuple[int, int, int, int]] = field(
        default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES)
    )
    txn_first_offset: int = -1
    last_seen_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def last_seq(self) -> int:
        return self.batches[-1][1] if self.batches else -1


class ProducerStateTable:
    """All producers of a partition: sequence checks, open transactions, snapshots.

    Example:
        >>> t = ProducerStateTable()
        >>> t.record(5, 0, 0, 0, 10, 10, transactional=True)
        >>> t.open_transactions()
        {5: 10}
    """

    def __init__(self) -> None:
        self.entries: dict[int, ProducerEntry] = {}

    def check(self, pid: int, epoch: int, first_seq: int, last_seq: int) -> tuple[int, int | None]:
        """Validate a batch before appending.

        Returns ``(error_code, duplicate_base_offset)``; a duplicate is reported with error 0
        and the offset the original batch got.
        """
        entry = self.entries.get(pid)
        if entry is None:
            return 0, None
        if epoch < entry.epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH, None
        if epoch > entry.epoch:
            if first_seq != 0:
                return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, None
            return 0, None
        for f, last, base, _ in entry.batches:
            if f == first_seq and last == last_seq:
                return 0, base
        if not entry.batches:
            return (0, None) if first_seq == 0 else (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, None)
        if first_seq != (entry.last_seq + 1) & 0x7FFFFFFF:
            return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, None
        return 0, None

    def record(
        self,
        pid: int,
        epoch: int,
        first_seq: int,
        last_seq: int,
        base_offset: int,
        last_offset: int,
        transactional: bool,
    ) -> None:
        """Remember an appended batch."""
        entry = self.entries.get(pid)
        if entry is None or epoch != entry.epoch:
            entry = ProducerEntry(epoch=epoch)
            old = self.entries.get(pid)
            if old is not None and old.txn_first_offset >= 0:
                entry.txn_first_offset = old.txn_first_offset
            self.entries[pid] = entry
        entry.last_seen_ms = int(time.time() * 1000)
        if first_seq >= 0:
            entry.batches.append((first_seq, last_seq, base_offset, last_offset))
        if transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = base_offset

    def end_transaction(self, pid: int, epoch: int) -> int:
        """Close the open transaction of ``pid`` (a marker was written); returns its first offset.

        A marker with a newer epoch fences older epochs, so the entry adopts it.
        """
        entry = self.entries.get(pid)
        if entry is None:
            self.entries[pid] = ProducerEntry(epoch=epoch)
            return -1
        first = entry.txn_first_offset
        entry.txn_first_offset = -1
        if epoch > entry.epoch:
            entry.epoch = epoch
            entry.batches.clear()
        return first

    def current_epoch(self, pid: int) -> int | None:
        entry = self.entries.get(pid)
        return None if entry is None else entry.epoch

    def open_transactions(self) -> dict[int, int]:
        """``{producer_id: first_offset}`` of transactions without a marker yet."""
        return {p: e.txn_first_offset for p, e in self.entries.items() if e.txn_first_offset >= 0}

    def to_json(self) -> dict[str, object]:
        return {
            str(pid): {
                "e": e.epoch,
                "b": list(e.batches),
                "t": e.txn_first_offset,
                "s": e.last_seen_ms,
            }
            for pid, e in self.entries.items()
        }

    @classmethod
    def from_json(cls, data: dict[str, dict[str, object]]) -> ProducerStateTable:
        t = cls()
        for pid, d in data.items():
            entry = ProducerEntry(epoch=int(d["e"]))  # type: ignore[arg-type]
            for b in d["b"]:  # type: ignore[union-attr]
                entry.batches.append(tuple(b))  # type: ignore[arg-type]
            entry.txn_first_offset = int(d["t"])  # type: ignore[arg-type]
            entry.last_seen_ms = int(d.get("s", entry.last_seen_ms))  # type: ignore[arg-type]
            t.entries[int(pid)] = entry
        return t

    def expire(self, now_ms: int, max_idle_ms: int = PRODUCER_EXPIRATION_MS) -> int:
        """Forget producers idle for ``max_idle_ms`` without an open transaction.

        Example:
            >>> t = ProducerStateTable()
            >>> t.record(1, 0, 0, 0, 0, 0, transactional=False)
            >>> t.expire(now_ms=2**62)
            1
        """
        stale = [
            pid
            for pid, e in self.entries.items()
            if e.txn_first_offset < 0 and now_ms - e.last_seen_ms > max_idle_ms
        ]
        for pid in stale:
            del self.entries[pid]
        return len(stale)

    def save(self, path: Path, offset: int) -> None:
        """Atomically write a snapshot valid for the log up to ``offset`` (exclusive)."""
        self.expire(int(time.time() * 1000))
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"offset": offset, "producers": self.to_json()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path) -> tuple[ProducerStateTable, int]:
        """Load a snapshot; returns an empty table and offset 0 if missing or unreadable."""
        try:
            with open(path) as f:
                data = json.load(f)
            return cls.from_json(data["producers"]), int(data["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return cls(), 0
