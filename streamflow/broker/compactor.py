"""Background log cleaning: time/size retention and key-based compaction.

* ``cleanup.policy=delete``: whole inactive segments are dropped once their newest record is
  older than ``retention.ms`` or while the partition exceeds ``retention.bytes``.
* ``cleanup.policy=compact``: inactive segments are rewritten keeping, per key, only the
  latest record (looking at all inactive segments). Tombstones (null value) are kept for
  ``delete.retention.ms`` after their timestamp. The active segment and anything at or above
  the last stable offset are never touched. Committed transactional records are compacted like
  others (keeping their producer id/epoch and transactional flag); records of aborted
  transactions are dropped; control batches (transaction markers) are kept.

Rewriting happens in a worker thread on immutable segments; the swap happens on the event
loop, one segment file at a time, keeping base offsets.

Example:
    >>> LogCleaner.__name__
    'LogCleaner'
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from .log import Segment, fsync_dir
from .partition import Partition
from .records import LOG_OVERHEAD, BatchHeader, iter_batches

if TYPE_CHECKING:
    from .server import Broker

log = logging.getLogger(__name__)


AbortedRanges = dict[int, list[tuple[int, int]]]


def _read_file(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def aborted_ranges(entries: list[tuple[int, int, int]]) -> AbortedRanges:
    """Group ``(producer id, first offset, marker offset)`` entries by producer id.

    Example:
        >>> aborted_ranges([(7, 10, 20)])
        {7: [(10, 20)]}
    """
    out: AbortedRanges = {}
    for pid, first, last in entries:
        out.setdefault(pid, []).append((first, last))
    return out


def _is_aborted(h: BatchHeader, aborted: AbortedRanges) -> bool:
    return any(f <= h.base_offset <= last for f, last in aborted.get(h.producer_id, ()))


def _records(raw: bytes) -> list[Any] | None:
    try:
        return list(DefaultRecordBatch(raw))
    except Exception:  # e.g. a codec whose library is not installed: keep the batch as is
        return None


def build_key_map(paths: list[Path], aborted: AbortedRanges | None = None) -> dict[bytes, int]:
    """Latest offset per key over the given segment files (oldest first).

    Records of aborted transactions do not count.

    Example:
        >>> build_key_map([])
        {}
    """
    aborted = aborted or {}
    latest: dict[bytes, int] = {}
    for path in paths:
        data = _read_file(path)
        for h in iter_batches(data):
            if h.is_control or (h.is_transactional and _is_aborted(h, aborted)):
                continue
            for rec in _records(data[h.start : h.end]) or ():
                if rec.key is not None:
                    latest[rec.key] = rec.offset
    return latest


def clean_segment(
    src: Path,
    dst: Path,
    latest: dict[bytes, int],
    tombstone_deadline_ms: int,
    aborted: AbortedRanges | None = None,
) -> tuple[int, int]:
    """Write a compacted copy of ``src`` to ``dst``; returns (records kept, records dropped).

    Keeps the latest record per key, drops expired tombstones and aborted transactional
    data; control batches are copied unchanged.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> (d / "in.log").write_bytes(b"")
        0
        >>> clean_segment(d / "in.log", d / "out.log", {}, 0)
        (0, 0)
    """
    aborted = aborted or {}
    data = _read_file(src)
    out: list[bytes | bytearray] = []
    kept = dropped = 0
    for h in iter_batches(data):
        raw = data[h.start : h.end]
        if h.is_control:
            out.append(raw)
            continue
        if h.is_transactional and _is_aborted(h, aborted):
            dropped += h.record_count
            continue
        records = _records(raw)
        if records is None:
            out.append(raw)
            continue
        keep = [
            r
            for r in records
            if r.key is None
            or (
                latest.get(r.key, -1) == r.offset
                and not (r.value is None and r.timestamp < tombstone_deadline_ms)
            )
        ]
        dropped += len(records) - len(keep)
        kept += len(keep)
        if len(keep) == len(records):
            out.append(raw)
            continue
        if not keep:
            continue
        base = keep[0].offset
        seq = -1 if h.base_sequence < 0 else (h.base_sequence + base - h.base_offset) & 0x7FFFFFFF
        builder = DefaultRecordBatchBuilder(
            2,
            h.attributes & 0x07,
            1 if h.is_transactional else 0,
            h.producer_id,
            h.producer_epoch,
            seq,
            1 << 30,
        )
        for r in keep:
            builder.append(r.offset - base, r.timestamp, r.key, r.value, list(r.headers))
        batch = builder.build()
        batch[0:8] = base.to_bytes(8, "big", signed=True)
        batch[12:16] = (0).to_bytes(4, "big")
        out.append(batch)
    tmp = dst.with_suffix(".cleaning")
    with open(tmp, "wb") as f:
        for chunk in out:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    fsync_dir(dst.parent)
    return kept, dropped


def _expired(plog: Any, older_than_ms: int | None, retention_bytes: int, oldest: Any) -> bool:
    """Whether retention deletes ``oldest`` of ``plog``: all its records timed before
    ``older_than_ms`` (``None``: no time limit), or the log over ``retention_bytes`` without it.
    """
    too_old = older_than_ms is not None and oldest.max_timestamp < older_than_ms
    too_big = retention_bytes > 0 and plog.size_bytes - oldest.size >= retention_bytes
    return too_old or too_big


class LogCleaner:
    """Runs retention and compaction passes for all partitions of a broker.

    Example:
        >>> hasattr(LogCleaner, "compact_partition")
        True
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = broker.config
        self._tasks: list[asyncio.Task[None]] = []
        self._cleaned_upto: dict[int, tuple[int, float]] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(
                self._loop(self.retention_pass, self.config.retention_check_interval_ms)
            ),
            loop.create_task(self._loop(self.compaction_pass, self.config.compaction_interval_ms)),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _loop(self, fn, interval_ms: int) -> None:  # type: ignore[no-untyped-def]
        while True:
            await asyncio.sleep(interval_ms / 1000.0)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log cleaner pass failed")

    async def retention_pass(self) -> None:
        """Delete expired segments of delete-policy topics."""
        now_ms = int(time.time() * 1000)
        for topic in list(self.broker.topics.topics.values()):
            if not topic.deletes:
                continue
            retention_ms = topic.int_config("retention.ms")
            retention_bytes = topic.int_config("retention.bytes")
            for part in topic.partitions:
                expired = functools.partial(
                    _expired,
                    part.log,
                    now_ms - retention_ms if retention_ms >= 0 else None,
                    retention_bytes,
                )
                self._delete_oldest_while(part, expired, "retention")

    def delete_segments_below(self, part: Partition, offset: int) -> None:
        """Delete the inactive segments of ``part`` that end at or below ``offset`` (and
        the last stable offset): DeleteRecords.

        >>> # broker.cleaner.delete_segments_below(partition, 1200)
        """
        self._delete_oldest_while(part, lambda oldest: oldest.next_offset <= offset, "deletion")

    def _delete_oldest_while(self, part: Partition, condition: Any, why: str) -> None:
        """Delete the oldest inactive segment of ``part`` while ``condition(segment)``
        holds and the segment is all below the last stable offset."""
        plog = part.log
        while len(plog.segments) > 1 and not part.closed:
            oldest = plog.segments[0]
            if not condition(oldest) or oldest.next_offset > part.last_stable_offset:
                break
            self.broker.flusher.forget(oldest)
            plog.delete_oldest()
            log.info(
                "%s-%d: %s removed segment %d (log start now %d)",
                part.topic,
                part.index,
                why,
                oldest.base_offset,
                plog.log_start_offset,
            )

    async def compaction_pass(self) -> None:
        """Compact every compact-policy partition with new inactive data."""
        for topic in list(self.broker.topics.topics.values()):
            if not topic.compacted:
                continue
            delete_retention = topic.int_config("delete.retention.ms")
            for part in topic.partitions:
                await self.compact_partition(part, delete_retention)

    async def compact_partition(self, part: Partition, delete_retention_ms: int) -> bool:
        """Compact the inactive segments of ``part``; returns True if anything changed."""
        # only segments entirely below the LSO: open transactions are not decided yet
        lso = part.last_stable_offset
        segments = [s for s in part.log.segments[:-1] if s.next_offset <= lso]
        if not segments or part.closed:
            return False
        upto = segments[-1].next_offset
        now_ms = int(time.time() * 1000)
        key = id(part)
        last_upto, last_time = self._cleaned_upto.get(key, (-1, 0.0))
        # Re-run on new inactive data, or every 10 minutes so old tombstones can expire.
        if last_upto == upto and time.monotonic() - last_time < 600:
            return False
        paths = [s.log_path for s in segments]
        aborted = aborted_ranges(part.aborted)
        latest = await asyncio.to_thread(build_key_map, paths, aborted)
        deadline = now_ms - delete_retention_ms
        cleaned: list[tuple[Segment, Path]] = []
        total_dropped = 0
        for seg in segments:
            dst = seg.log_path.with_suffix(".cleaned")
            _, dropped = await asyncio.to_thread(
                clean_segment, seg.log_path, dst, latest, deadline, aborted
            )
            total_dropped += dropped
            cleaned.append((seg, dst))
        if part.closed or part.log.segments[: len(segments)] != segments:
            for _, dst in cleaned:
                dst.unlink(missing_ok=True)
            return False
        for i, (seg, dst) in enumerate(cleaned):
            self.broker.flusher.forget(seg)
            seg.close()
            os.replace(dst, seg.log_path)
            seg.index_path.unlink(missing_ok=True)
            fresh = Segment.load(
                seg.directory, seg.base_offset, False, self.config.index_interval_bytes
            )
            fresh.write_index()
            part.log.segments[i] = fresh
        fsync_dir(part.directory)
        self._cleaned_upto[key] = (upto, time.monotonic())
        if total_dropped:
            log.info(
                "%s-%d: compaction removed %d record(s)", part.topic, part.index, total_dropped
            )
        return total_dropped > 0


__all__ = ["LOG_OVERHEAD", "LogCleaner", "build_key_map", "clean_segment"]
