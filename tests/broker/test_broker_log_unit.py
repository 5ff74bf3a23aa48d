"""Unit tests of the storage layer (no network)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from streamflow.broker.log import LogConfig, PartitionLog
from streamflow.broker.partition import Partition
from streamflow.broker.records import iter_batches, validate_produce_records


def _batch(values: list[bytes], ts: int | None = None, pid: int = -1, seq: int = -1) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, 0, pid, 0 if pid >= 0 else -1, seq, 1 << 20)
    for i, v in enumerate(values):
        b.append(i, ts if ts is not None else int(time.time() * 1000), b"k", v, [])
    return bytes(b.build())


def _append(log: PartitionLog, values: list[bytes], ts: int | None = None) -> int:
    from streamflow.broker.records import assign_offsets

    raw = _batch(values, ts)
    data = assign_offsets(raw, list(iter_batches(raw)), log.next_offset)
    base = log.next_offset
    log.append(data, list(iter_batches(data)))
    return base


def test_segments_roll_and_reads_cross_them(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path, LogConfig(segment_bytes=300, index_interval_bytes=64))
    for i in range(50):
        _append(log, [f"v{i}".encode()], ts=1000 + i)
    assert len(log.segments) > 5
    got = []
    off = 0
    while off < log.next_offset:
        data, off = log.read(off, 150, log.next_offset)
        got += [h.base_offset for h in iter_batches(data)]
    assert got == list(range(50))
    assert log.offset_for_timestamp(1020) == (20, 1020)
    assert log.offset_for_timestamp(5000) is None
    log.close()
    reopened = PartitionLog(tmp_path, LogConfig(segment_bytes=300, index_interval_bytes=64))
    assert reopened.next_offset == 50
    data, _ = reopened.read(33, 10, 50)
    assert next(iter_batches(data)).base_offset == 33
    reopened.close()


def test_preallocated_tail_is_not_damage(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path, LogConfig())
    for i in range(20):
        _append(log, [b"x" * 1000, f"{i}".encode()])
    log.active._finish_fill()
    size = log.active.size
    seg_path = log.active.log_path
    assert os.path.getsize(seg_path) > size  # zero-filled ahead
    # simulate a crash: no close, just reopen the files
    again = PartitionLog(tmp_path, LogConfig())
    assert again.next_offset == 40 and again.active.size == size
    _append(again, [b"after"])
    data, _ = again.read(40, 1 << 20, again.next_offset)
    assert [h.base_offset for h in iter_batches(data)] == [40]
    again.close()
    assert os.path.getsize(seg_path) == again.active.size  # trimmed on clean close


def test_partition_recovers_producer_state_and_aborts(tmp_path: Path) -> None:
    p = Partition("t", 0, tmp_path, LogConfig())
    raw = _batch([b"a", b"b"], pid=9, seq=0)
    assert p.append(raw, validate_produce_records(raw, 1 << 20)) == (0, 0)
    dup = p.append(raw, validate_produce_records(raw, 1 << 20))
    assert dup == (0, 0) and p.high_watermark == 2
    # crash: reopen without close (no snapshot written); a real crash also ends the
    # preallocation thread, so let it finish before a second instance opens the files
    p.log.active._finish_fill()
    q = Partition("t", 0, tmp_path, LogConfig())
    assert q.append(raw, validate_produce_records(raw, 1 << 20)) == (0, 0)
    gap = _batch([b"c"], pid=9, seq=7)
    assert q.append(gap, validate_produce_records(gap, 1 << 20))[0] == 45
    q.write_marker(9, 0, commit=False)
    q.close()
    r = Partition("t", 0, tmp_path, LogConfig())
    assert r.aborted == []  # nothing was open: an abort marker without data aborts nothing
    assert r.high_watermark == 3
    r.close()


def test_open_and_aborted_transactions_survive_crash(tmp_path: Path) -> None:
    def txn_batch(seq: int) -> bytes:
        b = DefaultRecordBatchBuilder(2, 0, 1, 5, 0, seq, 1 << 20)
        b.append(0, int(time.time() * 1000), None, b"t", [])
        return bytes(b.build())

    p = Partition("t", 0, tmp_path, LogConfig())
    first = txn_batch(0)
    p.append(first, validate_produce_records(first, 1 << 20))
    p.write_marker(5, 0, commit=False)  # offsets 0 (data), 1 (abort marker)
    second = txn_batch(1)
    p.append(second, validate_produce_records(second, 1 << 20))  # offset 2, still open
    assert p.last_stable_offset == 2
    # crash: no close, no snapshot; the aborted index file was written but is ignored here
    (tmp_path / "aborted.idx").unlink()
    p.log.active._finish_fill()
    q = Partition("t", 0, tmp_path, LogConfig())
    assert q.aborted == [(5, 0, 1)]
    assert q.last_stable_offset == 2 and q.high_watermark == 3
    res = q.fetch(0, 1 << 20, read_committed=True)
    assert res.aborted == [(5, 0)] and res.last_stable_offset == 2
    q.write_marker(5, 0, commit=True)
    assert q.last_stable_offset == 4
    q.close()
