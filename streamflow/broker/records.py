"""Record-batch inspection helpers: header parsing, validation and control markers.

Batches are stored exactly as the client sent them; the broker only reads the fixed
61-byte v2 header, checks the CRC32C, and patches ``baseOffset`` and
``partitionLeaderEpoch`` (both outside the CRC).

Example:
    >>> batch = build_control_batch(7, 0, commit=True, timestamp_ms=0)
    >>> [b.producer_id for b in iter_batches(batch)]
    [7]
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from aiokafka.record._crecords.cutil import crc32c_cython as crc32c
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from .errors import BrokerError, ErrorCode

HEADER = struct.Struct(">qiiBIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength
_OFFSET = struct.Struct(">q")
_EPOCH = struct.Struct(">i")
_CRC = struct.Struct(">I")

ATTR_COMPRESSION_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20

CONTROL_ABORT = 0
CONTROL_COMMIT = 1


class BatchHeader(NamedTuple):
    """Decoded fixed header of one v2 record batch, plus its position in a buffer.

    Example:
        >>> h = next(iter_batches(build_control_batch(1, 2, commit=False, timestamp_ms=5)))
        >>> (h.producer_epoch, h.is_control, h.last_offset)
        (2, True, 0)
    """

    base_offset: int
    length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    start: int

    @property
    def size(self) -> int:
        """Total bytes of the batch including the 12-byte log overhead."""
        return self.length + LOG_OVERHEAD

    @property
    def end(self) -> int:
        """Position just after this batch in the buffer it was parsed from."""
        return self.start + self.length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        """Offset of the last record in the batch."""
        return self.base_offset + self.last_offset_delta

    @property
    def last_sequence(self) -> int:
        """Sequence number of the last record (wrapping at 2**31)."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)


def iter_batches(buf: bytes | bytearray | memoryview, start: int = 0) -> Iterator[BatchHeader]:
    """Yield headers of the complete batches in ``buf`` (stops at a partial tail).

    Does not verify CRCs; see :func:`validate_produce_records` for that.

    Example:
        >>> len(list(iter_batches(b"")))
        0
    """
    pos = start
    n = len(buf)
    unpack = HEADER.unpack_from
    while pos + HEADER_SIZE <= n:
        fields = unpack(buf, pos)
        length = fields[1]
        end = pos + LOG_OVERHEAD + length
        if length < HEADER_SIZE - LOG_OVERHEAD or end > n:
            return
        yield BatchHeader(*fields, pos)
        pos = end


def scan_valid_prefix(
    buf: bytes | bytearray | memoryview, start: int = 0, check_crc: bool = True
) -> tuple[list[BatchHeader], int]:
    """Return the batches forming a valid prefix of ``buf`` and the end of that prefix.

    Used on startup to find a torn tail: anything after the returned position is garbage
    (short write, bad length, wrong magic or CRC mismatch).

    Example:
        >>> b = build_control_batch(1, 0, commit=True, timestamp_ms=0)
        >>> _, end = scan_valid_prefix(bytes(b) + b"junk")
        >>> end == len(b)
        True
    """
    out: list[BatchHeader] = []
    pos = start
    n = len(buf)
    mv = memoryview(buf)
    while pos + HEADER_SIZE <= n:
        h = BatchHeader(*HEADER.unpack_from(buf, pos), pos)
        if h.length < HEADER_SIZE - LOG_OVERHEAD or h.end > n or h.magic != 2:
            break
        if out and h.base_offset <= out[-1].last_offset:
            break
        if check_crc and crc32c(mv[pos + 21 : h.end]) != h.crc:
            break
        out.append(h)
        pos = h.end
    return out, pos


def validate_produce_records(records: bytes, max_batch_bytes: int) -> list[BatchHeader]:
    """Check the batches of one partition in a Produce request.

    Raises :class:`BrokerError` with the code Kafka would answer.

    Example:
        >>> validate_produce_records(b"\\x00" * 10, 1 << 20)
        Traceback (most recent call last):
        ...
        streamflow.broker.errors.BrokerError: CORRUPT_MESSAGE: truncated batch
    """
    n = len(records)
    if n == 0:
        raise BrokerError(ErrorCode.CORRUPT_MESSAGE, "empty record set")
    mv = memoryview(records)
    out: list[BatchHeader] = []
    pos = 0
    while pos < n:
        if pos + HEADER_SIZE > n:
            if pos + 17 <= n and records[pos + 16] != 2:
                raise BrokerError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, "magic < 2")
            raise BrokerError(ErrorCode.CORRUPT_MESSAGE, "truncated batch")
        h = BatchHeader(*HEADER.unpack_from(records, pos), pos)
        if h.magic != 2:
            raise BrokerError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"magic {h.magic}")
        if h.length < HEADER_SIZE - LOG_OVERHEAD or h.end > n:
            raise BrokerError(ErrorCode.CORRUPT_MESSAGE, "bad batch length")
        if h.size > max_batch_bytes:
            raise BrokerError(ErrorCode.MESSAGE_TOO_LARGE, f"batch of {h.size} bytes")
        if h.record_count <= 0 or h.last_offset_delta < 0:
            raise BrokerError(ErrorCode.CORRUPT_MESSAGE, "bad record count")
        if h.is_control:
            raise BrokerError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
        if crc32c(mv[pos + 21 : h.end]) != h.crc:
            raise BrokerError(ErrorCode.CORRUPT_MESSAGE, "CRC32C mismatch")
        out.append(h)
        pos = h.end
    return out


def assign_offsets(records: bytes, batches: list[BatchHeader], base_offset: int) -> bytearray:
    """Copy ``records`` with each batch's baseOffset set consecutively from ``base_offset``.

    Example:
        >>> b = build_control_batch(1, 0, commit=True, timestamp_ms=0)
        >>> next(iter_batches(assign_offsets(bytes(b), list(iter_batches(b)), 42))).base_offset
        42
    """
    out = bytearray(records)
    off = base_offset
    for h in batches:
        _OFFSET.pack_into(out, h.start, off)
        _EPOCH.pack_into(out, h.start + 12, 0)
        off += h.last_offset_delta + 1
    return out


def build_control_batch(
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    timestamp_ms: int,
    coordinator_epoch: int = 0,
) -> bytearray:
    """Build a transaction marker batch (offset 0; the log assigns the real offset).

    Example:
        >>> h = next(iter_batches(build_control_batch(3, 1, commit=True, timestamp_ms=0)))
        >>> h.is_transactional and h.is_control and h.base_sequence == -1
        True
    """
    builder = DefaultRecordBatchBuilder(2, 0, 1, producer_id, producer_epoch, -1, 1 << 16)
    key = struct.pack(">hh", 0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = struct.pack(">hi", 0, coordinator_epoch)
    builder.append(0, timestamp_ms, key, value, [])
    buf = builder.build()
    attrs = struct.unpack_from(">h", buf, 21)[0] | ATTR_CONTROL | ATTR_TRANSACTIONAL
    struct.pack_into(">h", buf, 21, attrs)
    _CRC.pack_into(buf, 17, crc32c(memoryview(buf)[21:]))
    return buf


def control_type(batch: bytes | bytearray | memoryview) -> int:
    """Return CONTROL_COMMIT or CONTROL_ABORT for a control batch built by this broker.

    Example:
        >>> control_type(build_control_batch(1, 0, commit=False, timestamp_ms=0))
        0
    """
    from aiokafka.record.default_records import DefaultRecordBatch

    rec = next(iter(DefaultRecordBatch(bytes(batch))))
    return struct.unpack_from(">hh", rec.key)[1]
