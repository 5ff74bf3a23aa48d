"""Append-only segment files with a sparse offset/timestamp index.

Layout of one partition directory::

    00000000000000000000.log     batches exactly as produced (baseOffset patched)
    00000000000000000000.index   header (next offset, max timestamp, size) + entries
                                 (offset, position, max timestamp before the entry)

The index of the active segment lives in memory and is written when the segment rolls or
the log closes; on startup the active segment is rescanned, its CRCs are checked and any torn
tail (short write, bad length, CRC mismatch) is truncated before anything is served.

Example:
    >>> import tempfile
    >>> from streamflow.broker.records import build_control_batch, iter_batches
    >>> d = Path(tempfile.mkdtemp())
    >>> log = PartitionLog(d, LogConfig())
    >>> b = build_control_batch(1, 0, True, 0)
    >>> log.append(b, list(iter_batches(b)))
    0
    >>> log.next_offset
    1
    >>> log.close()
"""

from __future__ import annotations

import logging
import os
import struct
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .records import HEADER, HEADER_SIZE, LOG_OVERHEAD, BatchHeader, iter_batches, scan_valid_prefix

log = logging.getLogger(__name__)

_IDX_HEADER = struct.Struct(">qqq")  # next_offset, max_timestamp, size
_IDX_ENTRY = struct.Struct(">qqq")  # offset, position, running max timestamp before entry
_HOP = struct.Struct(">qi11xi")  # baseOffset, length, lastOffsetDelta (bytes 0..27)
_HOP_SIZE = _HOP.size

# Zero-filled preallocation: overwriting blocks that already exist makes ``fdatasync`` a pure
# data write, while appending needs a journal commit for every size change (measured ~3x
# slower per sync on ext4). A worker fills ahead of the write position; the loop never writes
# into a range being filled (it waits in the rare case it catches up).
PREALLOC_MIN_SEGMENT = 1 << 20
_PREALLOC_MIN_CHUNK = 1 << 20
_PREALLOC_MAX_CHUNK = 16 << 20
_ZEROS = bytes(1 << 20)
_prealloc_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prealloc")


@dataclass
class LogConfig:
    """Per-partition log settings.

    Example:
        >>> LogConfig(segment_bytes=1024).segment_bytes
        1024
    """

    segment_bytes: int = 64 * 1024 * 1024
    segment_ms: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096


def fsync_dir(path: Path) -> None:
    """fsync a directory so that files created or renamed in it survive a power loss.

    Example:
        >>> import tempfile
        >>> fsync_dir(Path(tempfile.mkdtemp()))
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_name(base_offset: int) -> str:
    """File stem for the segment starting at ``base_offset``.

    Example:
        >>> segment_name(5)
        '00000000000000000005'
    """
    return f"{base_offset:020d}"


class Segment:
    """One ``.log`` file plus its in-memory sparse index.

    Example:
        >>> import tempfile
        >>> s = Segment.create(Path(tempfile.mkdtemp()), 0)
        >>> s.size
        0
    """

    def __init__(self, directory: Path, base_offset: int, fd: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.fd = fd
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.created = time.time()
        self.idx_offsets: list[int] = []
        self.idx_positions: list[int] = []
        self.idx_maxts: list[int] = []
        self._last_index_pos = -(1 << 62)
        self._pos_cache: dict[int, int] = {}
        self.closed = False
        self.prealloc_limit = 0  # 0: no preallocation (inactive or tiny segments)
        self.prepared_end = 0
        self._fill: Future[None] | None = None
        self._fill_start = 0
        self._fill_end = 0
        self.unsynced_bytes = 0

    @property
    def log_path(self) -> Path:
        return self.directory / (segment_name(self.base_offset) + ".log")

    @property
    def index_path(self) -> Path:
        return self.directory / (segment_name(self.base_offset) + ".index")

    @classmethod
    def create(cls, directory: Path, base_offset: int) -> Segment:
        """Create an empty segment file (the new active segment)."""
        path = directory / (segment_name(base_offset) + ".log")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        seg = cls(directory, base_offset, fd)
        seg.size = os.fstat(fd).st_size
        return seg

    @classmethod
    def load(cls, directory: Path, base_offset: int, active: bool, index_interval: int) -> Segment:
        """Open an existing segment; the active one is CRC-scanned and its torn tail cut."""
        seg = cls.create(directory, base_offset)
        st = os.fstat(seg.fd)
        seg.created = st.st_mtime
        if not active and seg._load_index():
            return seg
        seg._rebuild(check_crc=active, index_interval=index_interval)
        return seg

    def _load_index(self) -> bool:
        try:
            data = self.index_path.read_bytes()
        except OSError:
            return False
        if len(data) < _IDX_HEADER.size or (len(data) - _IDX_HEADER.size) % _IDX_ENTRY.size:
            return False
        next_offset, max_ts, size = _IDX_HEADER.unpack_from(data, 0)
        if size != self.size:
            return False
        for off, pos, mts in _IDX_ENTRY.iter_unpack(memoryview(data)[_IDX_HEADER.size :]):
            self.idx_offsets.append(off)
            self.idx_positions.append(pos)
            self.idx_maxts.append(mts)
        self.next_offset = next_offset
        self.max_timestamp = max_ts
        if self.idx_positions:
            self._last_index_pos = self.idx_positions[-1]
        return True

    def _rebuild(self, check_crc: bool, index_interval: int) -> None:
        file_size = self.size
        # Segments are bounded by segment.bytes, so one read is acceptable at startup.
        data = os.pread(self.fd, file_size, 0) if file_size else b""
        headers, valid_end = scan_valid_prefix(data, 0, check_crc=check_crc)
        for h in headers:
            self._index_batch(h.base_offset, h.start, h.max_timestamp, index_interval)
        if headers:
            self.next_offset = headers[-1].last_offset + 1
        tail_is_zeros = data.count(0, valid_end) == file_size - valid_end
        if valid_end < file_size and tail_is_zeros and check_crc:
            self.prepared_end = file_size  # preallocated space, not damage
        elif valid_end < file_size:
            log.warning(
                "%s: truncating %d bytes of torn/corrupt tail at position %d",
                self.log_path,
                file_size - valid_end,
                valid_end,
            )
            os.ftruncate(self.fd, valid_end)
            os.fsync(self.fd)
        self.size = valid_end

    def _index_batch(self, base_offset: int, pos: int, max_ts: int, interval: int) -> None:
        if pos - self._last_index_pos >= interval:
            self.idx_offsets.append(base_offset)
            self.idx_positions.append(pos)
            self.idx_maxts.append(self.max_timestamp)
            self._last_index_pos = pos
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts

    def append(self, data: bytes | bytearray, batches: list[BatchHeader], interval: int) -> None:
        """Write ``data`` (whole batches with offsets assigned) at the end of the file."""
        start = self.size
        end = start + len(data)
        if self._fill is not None and (self._fill.done() or end > self._fill_start):
            self._finish_fill()
        mv = memoryview(data)
        written = 0
        while written < len(data):
            written += os.pwrite(self.fd, mv[written:], start + written)
        for h in batches:
            self._index_batch(h.base_offset, start + h.start, h.max_timestamp, interval)
        self.size = end
        self.unsynced_bytes += len(data)
        self.next_offset = batches[-1].last_offset + 1
        if (
            self._fill is None
            and self.prealloc_limit
            and self.prepared_end - end < _PREALLOC_MIN_CHUNK
            and self.prepared_end < self.prealloc_limit
        ):
            chunk = min(max(end, _PREALLOC_MIN_CHUNK), _PREALLOC_MAX_CHUNK)
            self._fill_start = max(self.prepared_end, end)
            self._fill_end = min(self._fill_start + chunk, self.prealloc_limit)
            if self._fill_end > self._fill_start:
                self._fill = _prealloc_pool.submit(
                    _zero_fill, self.fd, self._fill_start, self._fill_end
                )

    def _finish_fill(self) -> None:
        """Wait for the running zero-fill (if any) and account for it."""
        fill, self._fill = self._fill, None
        if fill is None:
            return
        try:
            fill.result()
            self.prepared_end = max(self.prepared_end, self._fill_end)
        except OSError as e:
            log.warning("%s: preallocation failed: %s", self.log_path, e)
            self.prealloc_limit = 0

    def seal(self) -> None:
        """Stop preallocating and cut the file to its logical size (segment goes inactive)."""
        self._finish_fill()
        self.prealloc_limit = 0
        if not self.closed and os.fstat(self.fd).st_size != self.size:
            os.ftruncate(self.fd, self.size)
        self.prepared_end = self.size

    def read(self, pos: int, n: int) -> bytes:
        """Read ``n`` bytes at ``pos`` (fewer at the end of the file)."""
        return os.pread(self.fd, n, pos)

    def find_position(self, offset: int) -> int | None:
        """Position of the batch holding ``offset`` (or the first one after it), else None."""
        if offset >= self.next_offset:
            return None
        cached = self._pos_cache.get(offset)
        if cached is not None:
            return cached
        i = bisect_right(self.idx_offsets, offset) - 1
        pos = self.idx_positions[i] if i >= 0 else 0
        while pos + _HOP_SIZE <= self.size:
            base, length, delta = _HOP.unpack(os.pread(self.fd, _HOP_SIZE, pos))
            if base + delta >= offset:
                return pos
            pos += length + LOG_OVERHEAD
        return None

    def remember_position(self, offset: int, pos: int) -> None:
        """Cache where ``offset`` starts so a sequential reader skips the index walk."""
        if len(self._pos_cache) > 256:
            self._pos_cache.clear()
        self._pos_cache[offset] = pos

    def scan_from(self, pos: int) -> Iterator[BatchHeader]:
        """Yield batch headers (absolute positions) from ``pos`` to the end."""
        while pos + HEADER_SIZE <= self.size:
            h = BatchHeader(*HEADER.unpack(os.pread(self.fd, HEADER_SIZE, pos)), pos)
            yield h
            pos = h.end

    def position_for_timestamp(self, ts: int) -> int:
        """Position to start scanning for the first batch with max timestamp >= ``ts``."""
        j = bisect_left(self.idx_maxts, ts) - 1
        return self.idx_positions[j] if j >= 0 else 0

    def write_index(self) -> None:
        """Persist the sparse index (called when the segment becomes inactive)."""
        parts = [_IDX_HEADER.pack(self.next_offset, self.max_timestamp, self.size)]
        parts.extend(
            _IDX_ENTRY.pack(o, p, t)
            for o, p, t in zip(self.idx_offsets, self.idx_positions, self.idx_maxts, strict=True)
        )
        tmp = self.index_path.with_suffix(".index.tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(parts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.index_path)

    def sync(self) -> None:
        """fdatasync the log file."""
        if not self.closed:
            self.unsynced_bytes = 0
            os.fdatasync(self.fd)

    def close(self) -> None:
        if not self.closed:
            self.seal()
            self.closed = True
            os.close(self.fd)

    def delete(self) -> None:
        """Close and remove the files of this segment."""
        self.close()
        for p in (self.log_path, self.index_path):
            p.unlink(missing_ok=True)


def _zero_fill(fd: int, start: int, end: int) -> None:
    pos = start
    while pos < end:
        pos += os.pwrite(fd, memoryview(_ZEROS)[: min(len(_ZEROS), end - pos)], pos)
    os.fdatasync(fd)


class PartitionLog:
    """The ordered list of segments of one partition.

    Example:
        >>> import tempfile
        >>> log = PartitionLog(Path(tempfile.mkdtemp()), LogConfig())
        >>> (log.log_start_offset, log.next_offset)
        (0, 0)
        >>> log.close()
    """

    def __init__(self, directory: Path, config: LogConfig) -> None:
        self.directory = directory
        self.config = config
        directory.mkdir(parents=True, exist_ok=True)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink()
        for tmp in directory.glob("*.cleaned"):
            tmp.unlink()
        bases = sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
        self.segments: list[Segment] = []
        for i, base in enumerate(bases):
            active = i == len(bases) - 1
            self.segments.append(Segment.load(directory, base, active, config.index_interval_bytes))
        if not self.segments:
            self.segments.append(Segment.create(directory, 0))
            fsync_dir(directory)
        self.bases = [s.base_offset for s in self.segments]
        self._enable_prealloc(self.active)

    def _enable_prealloc(self, seg: Segment) -> None:
        if self.config.segment_bytes >= PREALLOC_MIN_SEGMENT:
            seg.prealloc_limit = self.config.segment_bytes

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    @property
    def next_offset(self) -> int:
        """Log end offset: the offset the next appended record gets."""
        return self.active.next_offset

    @property
    def log_start_offset(self) -> int:
        return self.segments[0].base_offset

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def append(self, data: bytes | bytearray, batches: list[BatchHeader]) -> int:
        """Append whole batches whose offsets were already assigned; returns the position."""
        seg = self.active
        if seg.size > 0 and (
            seg.size + len(data) > self.config.segment_bytes
            or (time.time() - seg.created) * 1000 > self.config.segment_ms
        ):
            seg = self.roll()
        pos = seg.size
        seg.append(data, batches, self.config.index_interval_bytes)
        return pos

    def roll(self) -> Segment:
        """Close the active segment for writes and start a new one at the log end."""
        old = self.active
        old.seal()
        old.write_index()
        old.sync()
        seg = Segment.create(self.directory, old.next_offset)
        fsync_dir(self.directory)
        seg.next_offset = old.next_offset
        self._enable_prealloc(seg)
        self.segments.append(seg)
        self.bases.append(seg.base_offset)
        return seg

    def _segment_for(self, offset: int) -> int:
        i = bisect_right(self.bases, offset) - 1
        return max(i, 0)

    def read(self, offset: int, max_bytes: int, bound: int) -> tuple[bytes, int]:
        """Read whole batches from ``offset`` up to ``max_bytes``, stopping before ``bound``.

        Returns the bytes and the offset after the last returned batch. At least one batch is
        returned if any is available, even if larger than ``max_bytes`` (as Kafka does).
        """
        if offset >= bound:
            return b"", offset
        i = self._segment_for(offset)
        while i < len(self.segments):
            seg = self.segments[i]
            pos = seg.find_position(offset)
            if pos is not None:
                break
            i += 1
        else:
            return b"", offset
        avail = seg.size - pos
        data = seg.read(pos, min(avail, max(max_bytes, HEADER_SIZE)))
        end = 0
        next_off = offset
        for h in iter_batches(data):
            if h.base_offset >= bound:
                break
            end = h.end
            next_off = h.last_offset + 1
        if end == 0:
            if len(data) < HEADER_SIZE:
                return b"", offset
            base, length, _ = _HOP.unpack_from(data, 0)
            if base >= bound:
                return b"", offset
            data = seg.read(pos, length + LOG_OVERHEAD)
            first = next(iter_batches(data), None)
            if first is None:
                return b"", offset
            end = first.end
            next_off = first.last_offset + 1
        seg.remember_position(next_off, pos + end)
        return (data if end == len(data) else data[:end]), next_off

    def offset_for_timestamp(self, ts: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record with timestamp >= ``ts``, or None."""
        from aiokafka.record.default_records import DefaultRecordBatch

        for seg in self.segments:
            if seg.max_timestamp < ts:
                continue
            for h in seg.scan_from(seg.position_for_timestamp(ts)):
                if h.max_timestamp >= ts:
                    if h.is_control:
                        return h.base_offset, h.max_timestamp
                    batch = DefaultRecordBatch(seg.read(h.start, h.size))
                    for rec in batch:
                        if rec.timestamp >= ts:
                            return rec.offset, rec.timestamp
                    return h.base_offset, h.max_timestamp
        return None

    def delete_oldest(self) -> Segment | None:
        """Drop the oldest inactive segment (retention); returns it or None."""
        if len(self.segments) < 2:
            return None
        seg = self.segments.pop(0)
        self.bases.pop(0)
        seg.delete()
        return seg

    def close(self) -> None:
        """Write the active index and close all files."""
        try:
            if not self.active.closed:
                self.active.seal()
                self.active.write_index()
        except OSError:
            pass
        for seg in self.segments:
            seg.close()
