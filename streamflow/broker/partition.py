"""One topic partition: log, producer state, transaction bookkeeping and long-poll wakeups.

Example:
    >>> import tempfile
    >>> p = Partition("t", 0, Path(tempfile.mkdtemp()), LogConfig())
    >>> p.write_marker(pid=7, epoch=0, commit=True)
    0
    >>> p.high_watermark
    1
    >>> p.close()
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from .errors import BrokerError, ErrorCode
from .log import LogConfig, PartitionLog, fsync_dir
from .producer_state import ProducerStateTable
from .records import (
    CONTROL_COMMIT,
    BatchHeader,
    assign_offsets,
    build_control_batch,
    control_type,
    iter_batches,
)

log = logging.getLogger(__name__)

_ABORTED = struct.Struct(">qqq")  # producer id, first offset, marker offset
SNAPSHOT_FILE = "producer.snapshot"
ABORTED_FILE = "aborted.idx"


@dataclass
class FetchResult:
    """What a Fetch needs for one partition.

    Example:
        >>> FetchResult(0, 10, 10, 0, b"", None).high_watermark
        10
    """

    error: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: bytes
    aborted: list[tuple[int, int]] | None


class Partition:
    """A partition of a topic, owning its directory.

    Example:
        >>> import tempfile
        >>> p = Partition("t", 0, Path(tempfile.mkdtemp()), LogConfig())
        >>> p.fetch(0, 1024, read_committed=False).records
        b''
        >>> p.close()
    """

    def __init__(
        self,
        topic: str,
        index: int,
        directory: Path,
        log_config: LogConfig,
        max_message_bytes: int = 1024 * 1024 + 12,
    ) -> None:
        self.topic = topic
        self.index = index
        self.directory = directory
        self.max_message_bytes = max_message_bytes
        self.log = PartitionLog(directory, log_config)
        self.waiters: set[asyncio.Future[None]] = set()
        self.closed = False
        self._load_aborted()
        self._recover_producer_state()
        self._aborted_fd = os.open(
            directory / ABORTED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        self._segment_count = len(self.log.segments)
        self._aborted_dirty = False

    # -- recovery -----------------------------------------------------------------------
    def _load_aborted(self) -> None:
        self.aborted: list[tuple[int, int, int]] = []
        try:
            data = (self.directory / ABORTED_FILE).read_bytes()
        except FileNotFoundError:
            data = b""
        end = self.log.next_offset
        usable = len(data) - len(data) % _ABORTED.size
        seen: set[int] = set()
        for pid, first, last in _ABORTED.iter_unpack(data[:usable]):
            if last < end and last not in seen:
                seen.add(last)
                self.aborted.append((pid, first, last))
        self.aborted.sort(key=lambda e: e[2])
        self._aborted_marks = seen
        if usable != len(data) or len(seen) * _ABORTED.size != usable:
            self._rewrite_aborted()

    def _rewrite_aborted(self) -> None:
        path = self.directory / ABORTED_FILE
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(_ABORTED.pack(*e) for e in self.aborted))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(self.directory)

    def _recover_producer_state(self) -> None:
        table, snap_offset = ProducerStateTable.load(self.directory / SNAPSHOT_FILE)
        if snap_offset > self.log.next_offset or snap_offset < self.log.log_start_offset:
            table, snap_offset = ProducerStateTable(), self.log.log_start_offset
        self.producers = table
        replayed = 0
        for seg in self.log.segments:
            if seg.next_offset <= snap_offset:
                continue
            pos = seg.find_position(snap_offset) if snap_offset > seg.base_offset else 0
            if pos is None:
                continue
            for h in seg.scan_from(pos):
                if h.base_offset < snap_offset:
                    continue
                replayed += 1
                self._apply_to_state(h, seg.read(h.start, h.size) if h.is_control else None)
        if replayed:
            log.info(
                "%s-%d: replayed %d batches into producer state", self.topic, self.index, replayed
            )

    def _apply_to_state(self, h: BatchHeader, control_batch: bytes | None) -> None:
        if h.producer_id < 0:
            return
        if control_batch is not None:
            first = self.producers.end_transaction(h.producer_id, h.producer_epoch)
            aborted = control_type(control_batch) != CONTROL_COMMIT and first >= 0
            if aborted and h.base_offset not in self._aborted_marks:
                self._aborted_marks.add(h.base_offset)
                self.aborted.append((h.producer_id, first, h.base_offset))
                self._rewrite_aborted()
            return
        self.producers.record(
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.last_sequence,
            h.base_offset,
            h.last_offset,
            h.is_transactional,
        )

    # -- offsets ------------------------------------------------------------------------
    @property
    def high_watermark(self) -> int:
        return self.log.next_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def last_stable_offset(self) -> int:
        """First offset of the oldest open transaction, else the high watermark."""
        open_txns = self.producers.open_transactions()
        if open_txns:
            return min(open_txns.values())
        return self.log.next_offset

    # -- writes -------------------------------------------------------------------------
    def append(self, records: bytes, batches: list[BatchHeader]) -> tuple[int, int]:
        """Append validated client batches; returns ``(error_code, base_offset)``.

        Idempotent batches are checked against the producer state first; a retried
        duplicate returns the original offset without writing again.
        """
        if self.closed:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1
        first = batches[0]
        pid = first.producer_id
        if pid >= 0:
            if len(batches) != 1:
                return ErrorCode.INVALID_RECORD, -1
            err, dup = self.producers.check(
                pid, first.producer_epoch, first.base_sequence, first.last_sequence
            )
            if err:
                return err, -1
            if dup is not None:
                return 0, dup
        base = self.log.next_offset
        data = assign_offsets(records, batches, base)
        placed = list(iter_batches(data))
        self.log.append(data, placed)
        if pid >= 0:
            h = placed[0]
            self.producers.record(
                pid,
                h.producer_epoch,
                h.base_sequence,
                h.last_sequence,
                h.base_offset,
                h.last_offset,
                h.is_transactional,
            )
        self._after_write()
        return 0, base

    def write_marker(self, pid: int, epoch: int, commit: bool, coordinator_epoch: int = 0) -> int:
        """Append a COMMIT/ABORT control batch for ``pid``; returns its offset."""
        if self.closed:
            raise BrokerError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "partition closed")
        batch = build_control_batch(pid, epoch, commit, int(time.time() * 1000), coordinator_epoch)
        offset = self.log.next_offset
        data = assign_offsets(bytes(batch), list(iter_batches(batch)), offset)
        self.log.append(data, list(iter_batches(data)))
        first = self.producers.end_transaction(pid, epoch)
        if not commit and first >= 0:
            entry = (pid, first, offset)
            self.aborted.append(entry)
            self._aborted_marks.add(offset)
            os.write(self._aborted_fd, _ABORTED.pack(*entry))
            self._aborted_dirty = True
        self._after_write()
        return offset

    def _after_write(self) -> None:
        if len(self.log.segments) != self._segment_count:
            self._segment_count = len(self.log.segments)
            self.snapshot()
        self.notify()

    def notify(self) -> None:
        """Wake long-polling fetches waiting on this partition."""
        if self.waiters:
            for w in self.waiters:
                if not w.done():
                    w.set_result(None)
            self.waiters.clear()

    def snapshot(self) -> None:
        """Persist producer state for the log as it is now."""
        self.producers.save(self.directory / SNAPSHOT_FILE, self.log.next_offset)

    # -- reads --------------------------------------------------------------------------
    def fetch(self, offset: int, max_bytes: int, read_committed: bool) -> FetchResult:
        """Read batches from ``offset`` honouring the isolation level."""
        hw = self.log.next_offset
        lso = self.last_stable_offset
        start = self.log.log_start_offset
        if offset < start or offset > hw:
            return FetchResult(ErrorCode.OFFSET_OUT_OF_RANGE, hw, lso, start, b"", None)
        bound = lso if read_committed else hw
        data, next_off = self.log.read(offset, max_bytes, bound)
        aborted: list[tuple[int, int]] | None = None
        if read_committed and data and self.aborted:
            i = bisect_left(self.aborted, offset, key=lambda e: e[2])
            aborted = [(p, f) for p, f, _ in self.aborted[i:] if f < next_off] or None
        return FetchResult(0, hw, lso, start, data, aborted)

    def offset_for_timestamp(self, ts: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record at or after ``ts``, or None."""
        return self.log.offset_for_timestamp(ts)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def unsynced_bytes(self) -> int:
        """Bytes appended since the last sync (the flusher syncs small amounts inline)."""
        return self.log.active.unsynced_bytes

    def sync(self) -> None:
        """fsync the active segment and, if it changed, the aborted-transaction index."""
        if not self.closed:
            self.log.active.sync()
            if self._aborted_dirty:
                self._aborted_dirty = False
                os.fdatasync(self._aborted_fd)

    def close(self) -> None:
        """Snapshot producer state and close all files."""
        if self.closed:
            return
        try:
            self.snapshot()
        except OSError:
            log.exception("could not snapshot producer state for %s-%d", self.topic, self.index)
        self.closed = True
        self.log.close()
        os.close(self._aborted_fd)
        self.notify()
