"""Transaction coordinator: producer ids, epochs/fencing, transaction state and markers.

State changes are appended to ``<data_dir>/coordinator/transactions.log`` (JSON lines) and
made durable before they are acknowledged. A transaction that was deciding (PrepareCommit /
PrepareAbort) when the broker died is completed on startup; an Ongoing one is aborted when
its timeout passes or when its producer calls InitProducerId again.

Example:
    >>> import asyncio, tempfile
    >>> from pathlib import Path
    >>> from streamflow.broker.config import BrokerConfig
    >>> from streamflow.broker.flusher import Flusher
    >>> from streamflow.broker.offsets import OffsetStore
    >>> from streamflow.broker.topics import TopicManager
    >>> async def demo():
    ...     cfg = BrokerConfig(data_dir=Path(tempfile.mkdtemp()))
    ...     tc = TransactionCoordinator(cfg, TopicManager(cfg), OffsetStore(cfg.data_dir / "c"),
    ...                                 Flusher("never", 1000))
    ...     return await tc.init_producer_id("tx-1", 60000)
    >>> asyncio.run(demo())
    (0, 0, 0)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field

from .config import BrokerConfig
from .errors import ErrorCode
from .flusher import Flusher
from .log import fsync_dir
from .offsets import OffsetStore, read_journal
from .topics import TopicManager

log = logging.getLogger(__name__)

EMPTY = "Empty"
ONGOING = "Ongoing"
PREPARE_COMMIT = "PrepareCommit"
PREPARE_ABORT = "PrepareAbort"
COMPLETE_COMMIT = "CompleteCommit"
COMPLETE_ABORT = "CompleteAbort"

PID_BLOCK = 1000
MAX_EPOCH = 32767


@dataclass
class TxnMetadata:
    """Coordinator-side state of one transactional id.

    Example:
        >>> TxnMetadata("tx", 1, 0, 60000).state
        'Empty'
    """

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: str = EMPTY
    partitions: set[tuple[str, int]] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    started: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "txn": self.transactional_id,
                "pid": self.producer_id,
                "epoch": self.producer_epoch,
                "timeout": self.timeout_ms,
                "state": self.state,
                "parts": sorted(self.partitions),
                "groups": sorted(self.groups),
                "start": self.started,
            }
        )


class TransactionCoordinator:
    """Implements InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn.

    Example:
        >>> TransactionCoordinator.__name__
        'TransactionCoordinator'
    """

    COMPACT_AFTER_LINES = 50_000

    def __init__(
        self, config: BrokerConfig, topics: TopicManager, offsets: OffsetStore, flusher: Flusher
    ) -> None:
        self.config = config
        self.topics = topics
        self.offsets = offsets
        self.flusher = flusher
        directory = config.data_dir / "coordinator"
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "transactions.log"
        self.txns: dict[str, TxnMetadata] = {}
        self.by_pid: dict[int, TxnMetadata] = {}
        self.next_pid = 0
        self.pid_reserved = 0
        self._lines = 0
        self._replay()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._rewrite()
        self._task: asyncio.Task[None] | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    # -- persistence ----------------------------------------------------------------------
    def _replay(self) -> None:
        for rec in read_journal(self.path):
            if "pid_block" in rec:
                self.pid_reserved = max(self.pid_reserved, int(rec["pid_block"]))
                continue
            meta = TxnMetadata(
                rec["txn"],
                int(rec["pid"]),
                int(rec["epoch"]),
                int(rec["timeout"]),
                rec["state"],
                {(t, int(p)) for t, p in rec["parts"]},
                set(rec["groups"]),
                float(rec["start"]),
            )
            self.txns[meta.transactional_id] = meta
        self.next_pid = self.pid_reserved
        for meta in self.txns.values():
            self.by_pid[meta.producer_id] = meta

    def _rewrite(self) -> None:
        lines = [json.dumps({"pid_block": self.pid_reserved})]
        lines += [m.to_json() for m in self.txns.values()]
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self._lines = len(lines)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _persist(self, meta: TxnMetadata) -> None:
        os.write(self._fd, (meta.to_json() + "\n").encode())
        self._lines += 1
        if self._lines > self.COMPACT_AFTER_LINES:
            self._rewrite()  # fsyncs the compacted file itself
        else:
            self.flusher.mark_dirty(self)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def allocate_pid(self) -> int:
        """Hand out a new producer id (ids are reserved on disk in blocks)."""
        if self.next_pid >= self.pid_reserved:
            self.pid_reserved = self.next_pid + PID_BLOCK
            os.write(self._fd, (json.dumps({"pid_block": self.pid_reserved}) + "\n").encode())
            os.fsync(self._fd)
        pid = self.next_pid
        self.next_pid += 1
        return pid

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Finish transactions that were deciding at crash time; start the timeout checker."""
        for meta in list(self.txns.values()):
            if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                log.info("completing %s of %s after restart", meta.state, meta.transactional_id)
                await self._complete(meta, meta.state == PREPARE_COMMIT)
        self._task = asyncio.get_running_loop().create_task(self._expiry_loop(), name="txn-expiry")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def _lock(self, txn_id: str) -> asyncio.Lock:
        lock = self._locks.get(txn_id)
        if lock is None:
            lock = self._locks[txn_id] = asyncio.Lock()
        return lock

    # -- API ------------------------------------------------------------------------------
    async def init_producer_id(self, txn_id: str | None, timeout_ms: int) -> tuple[int, int, int]:
        """Returns ``(error, producer_id, epoch)``; bumps the epoch and aborts open work."""
        if not txn_id:
            return 0, self.allocate_pid(), 0
        if timeout_ms <= 0 or timeout_ms > self.config.transaction_max_timeout_ms:
            return ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1, -1
        async with self._lock(txn_id):
            meta = self.txns.get(txn_id)
            if meta is None:
                meta = TxnMetadata(txn_id, self.allocate_pid(), 0, timeout_ms)
                self.txns[txn_id] = meta
                self.by_pid[meta.producer_id] = meta
            else:
                if meta.state in (ONGOING, PREPARE_ABORT, PREPARE_COMMIT):
                    commit = meta.state == PREPARE_COMMIT
                    if meta.state == ONGOING:
                        meta.producer_epoch = self._bumped(meta)
                        meta.state = PREPARE_ABORT
                        self._persist(meta)
                        await self.flusher.durable()
                    await self._complete(meta, commit)
                new_epoch = meta.producer_epoch + 1
                if new_epoch > MAX_EPOCH:
                    self.by_pid.pop(meta.producer_id, None)
                    meta.producer_id = self.allocate_pid()
                    self.by_pid[meta.producer_id] = meta
                    new_epoch = 0
                meta.producer_epoch = new_epoch
                meta.timeout_ms = timeout_ms
                meta.state = EMPTY
                meta.partitions = set()
                meta.groups = set()
            self._persist(meta)
            await self.flusher.durable()
            return 0, meta.producer_id, meta.producer_epoch

    def _bumped(self, meta: TxnMetadata) -> int:
        return min(meta.producer_epoch + 1, MAX_EPOCH)

    def _check(
        self, txn_id: str, pid: int, epoch: int, version: int
    ) -> tuple[int, TxnMetadata | None]:
        meta = self.txns.get(txn_id)
        if meta is None or meta.producer_id != pid:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING, None
        if epoch != meta.producer_epoch:
            fenced = ErrorCode.PRODUCER_FENCED if version >= 2 else ErrorCode.INVALID_PRODUCER_EPOCH
            return fenced, None
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return ErrorCode.CONCURRENT_TRANSACTIONS, None
        return 0, meta

    def _begin(self, meta: TxnMetadata) -> None:
        if meta.state != ONGOING:
            meta.state = ONGOING
            meta.partitions = set()
            meta.groups = set()
            meta.started = time.time()

    async def add_partitions(
        self, txn_id: str, pid: int, epoch: int, partitions: list[tuple[str, int]], version: int
    ) -> dict[tuple[str, int], int]:
        """AddPartitionsToTxn: per-partition error codes."""
        async with self._lock(txn_id):
            err, meta = self._check(txn_id, pid, epoch, version)
            if err or meta is None:
                return {tp: err for tp in partitions}
            unknown = {tp for tp in partitions if self.topics.get_partition(*tp) is None}
            if unknown:
                return {
                    tp: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    if tp in unknown
                    else ErrorCode.OPERATION_NOT_ATTEMPTED
                    for tp in partitions
                }
            self._begin(meta)
            if not set(partitions) <= meta.partitions:
                meta.partitions.update(partitions)
                self._persist(meta)
                await self.flusher.durable()
            return {tp: 0 for tp in partitions}

    async def add_offsets(self, txn_id: str, pid: int, epoch: int, group: str, version: int) -> int:
        """AddOffsetsToTxn: the group's offsets become part of the transaction."""
        async with self._lock(txn_id):
            err, meta = self._check(txn_id, pid, epoch, version)
            if err or meta is None:
                return err
            self._begin(meta)
            if group not in meta.groups:
                meta.groups.add(group)
                self._persist(meta)
                await self.flusher.durable()
            return 0

    async def txn_offset_commit(
        self,
        txn_id: str,
        group: str,
        pid: int,
        epoch: int,
        entries: list[tuple[str, int, int, str]],
        version: int,
    ) -> int:
        """TxnOffsetCommit: stage offsets until EndTxn decides."""
        meta = self.txns.get(txn_id)
        if meta is None or meta.producer_id != pid:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch != meta.producer_epoch:
            return ErrorCode.PRODUCER_FENCED if version >= 2 else ErrorCode.INVALID_PRODUCER_EPOCH
        if meta.state != ONGOING or group not in meta.groups:
            return ErrorCode.INVALID_TXN_STATE
        self.offsets.stage(pid, group, entries)
        self.flusher.mark_dirty(self.offsets)
        await self.flusher.durable()
        return 0

    async def end_txn(self, txn_id: str, pid: int, epoch: int, commit: bool, version: int) -> int:
        """EndTxn: write COMMIT/ABORT markers to every partition of the transaction."""
        async with self._lock(txn_id):
            meta = self.txns.get(txn_id)
            if meta is None or meta.producer_id != pid:
                return ErrorCode.INVALID_PRODUCER_ID_MAPPING
            if epoch != meta.producer_epoch:
                # An abort retried after a timeout-abort bumped the epoch is harmless.
                if not commit and meta.state == COMPLETE_ABORT and epoch == meta.producer_epoch - 1:
                    return ErrorCode.INVALID_PRODUCER_EPOCH
                return (
                    ErrorCode.PRODUCER_FENCED if version >= 2 else ErrorCode.INVALID_PRODUCER_EPOCH
                )
            if meta.state == COMPLETE_COMMIT:
                return 0 if commit else ErrorCode.INVALID_TXN_STATE
            if meta.state == COMPLETE_ABORT:
                return 0 if not commit else ErrorCode.INVALID_TXN_STATE
            if meta.state == EMPTY:
                return 0
            meta.state = PREPARE_COMMIT if commit else PREPARE_ABORT
            self._persist(meta)
            await self.flusher.durable()
            await self._complete(meta, commit)
            return 0

    async def _complete(self, meta: TxnMetadata, commit: bool) -> None:
        for topic, index in sorted(meta.partitions):
            part = self.topics.get_partition(topic, index)
            if part is None:
                continue
            part.write_marker(meta.producer_id, meta.producer_epoch, commit)
            self.flusher.mark_dirty(part)
        self.offsets.end_transaction(meta.producer_id, commit)
        self.flusher.mark_dirty(self.offsets)
        meta.state = COMPLETE_COMMIT if commit else COMPLETE_ABORT
        self._persist(meta)
        await self.flusher.durable()

    def check_produce(self, pid: int, epoch: int, topic: str, index: int) -> int:
        """Validate a transactional batch: current epoch and partition added to the txn."""
        meta = self.by_pid.get(pid)
        if meta is None:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch < meta.producer_epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if meta.state != ONGOING or (topic, index) not in meta.partitions:
            return ErrorCode.INVALID_TXN_STATE
        return 0

    def producer_epoch(self, pid: int) -> int | None:
        meta = self.by_pid.get(pid)
        return None if meta is None else meta.producer_epoch

    async def _expiry_loop(self) -> None:
        interval = self.config.transaction_check_interval_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for meta in list(self.txns.values()):
                if meta.state == ONGOING and now - meta.started > meta.timeout_ms / 1000.0:
                    async with self._lock(meta.transactional_id):
                        if meta.state != ONGOING:
                            continue
                        log.info(
                            "transaction %s (pid %d) timed out; aborting",
                            meta.transactional_id,
                            meta.producer_id,
                        )
                        meta.producer_epoch = self._bumped(meta)
                        meta.state = PREPARE_ABORT
                        self._persist(meta)
                        await self.flusher.durable()
                        await self._complete(meta, False)
