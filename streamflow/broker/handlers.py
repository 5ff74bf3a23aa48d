"""Per-API request handlers: translate decoded requests into broker operations.

Each handler takes the decoded request body and its version and returns a response dict (or
``None`` for ``acks=0`` produce). Handlers may be coroutines; Produce returns an extra future
so the connection can read the next request while the fsync for this one is pending.

Example:
    >>> RequestHandlers.__name__
    'RequestHandlers'
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from .errors import BrokerError, ErrorCode
from .protocol import api_versions_body
from .records import validate_produce_records

if TYPE_CHECKING:
    from .server import Broker

log = logging.getLogger(__name__)

READ_COMMITTED = 1
MAX_METADATA_LEN = 4096


class Deferred:
    """A response that is ready once ``waiter`` completes (e.g. the group-commit fsync).

    Example:
        >>> Deferred({"x": 1}, None).response
        {'x': 1}
    """

    __slots__ = ("response", "waiter")

    def __init__(self, response: dict[str, Any], waiter: Awaitable[None] | None) -> None:
        self.response = response
        self.waiter = waiter


class RequestHandlers:
    """The implementation behind every advertised API.

    Example:
        >>> hasattr(RequestHandlers, "produce") and hasattr(RequestHandlers, "fetch")
        True
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.topics = broker.topics
        self.groups = broker.groups
        self.offsets = broker.offsets
        self.txns = broker.txns
        self.flusher = broker.flusher

    @property
    def node(self) -> dict[str, Any]:
        return {
            "node_id": self.config.node_id,
            "host": self.config.advertised,
            "port": self.broker.port,
            "rack": None,
        }

    # -- metadata & admin -----------------------------------------------------------------
    def api_versions(self, req: Any, v: int) -> dict[str, Any]:
        return {"error_code": 0, "api_keys": api_versions_body(), "throttle_time_ms": 0}

    def metadata(self, req: Any, v: int) -> dict[str, Any]:
        allow_auto = req.allow_auto_topic_creation if v >= 4 else True
        names = sorted(self.topics.topics) if req.topics is None else [t.name for t in req.topics]
        topics = []
        node = self.config.node_id
        for name in names:
            topic = self.topics.get(name)
            error = 0
            if topic is None and allow_auto and self.config.auto_create_topics:
                try:
                    topic = self.topics.create(name, self.config.num_partitions, {})
                except BrokerError as e:
                    error = e.code
            if topic is None:
                topics.append(
                    {
                        "error_code": error or ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        "name": name,
                        "is_internal": False,
                        "partitions": [],
                    }
                )
                continue
            topics.append(
                {
                    "error_code": 0,
                    "name": name,
                    "is_internal": False,
                    "partitions": [
                        {
                            "error_code": 0,
                            "partition_index": p.index,
                            "leader_id": node,
                            "replica_nodes": [node],
                            "isr_nodes": [node],
                            "offline_replicas": [],
                        }
                        for p in topic.partitions
                    ],
                }
            )
        return {
            "throttle_time_ms": 0,
            "brokers": [self.node],
            "cluster_id": self.config.cluster_id,
            "controller_id": node,
            "topics": topics,
        }

    def find_coordinator(self, req: Any, v: int) -> dict[str, Any]:
        return {
            "throttle_time_ms": 0,
            "error_code": 0,
            "error_message": None,
            "node_id": self.config.node_id,
            "host": self.config.advertised,
            "port": self.broker.port,
        }

    def create_topics(self, req: Any, v: int) -> dict[str, Any]:
        results = []
        for t in req.topics:
            error, message = 0, None
            try:
                if t.replication_factor not in (-1, 1):
                    raise BrokerError(
                        ErrorCode.INVALID_REPLICATION_FACTOR,
                        "replication factor must be 1 on a single-node broker",
                    )
                n = t.num_partitions
                if t.assignments:
                    n = len(t.assignments)
                # a null value means "use the default"
                configs = {c.name: c.value for c in (t.configs or []) if c.value is not None}
                if req.validate_only:
                    if self.topics.get(t.name) is not None:
                        raise BrokerError(ErrorCode.TOPIC_ALREADY_EXISTS, "exists")
                else:
                    self.topics.create(t.name, n, configs)
            except BrokerError as e:
                error, message = e.code, e.message
                if e.code != ErrorCode.TOPIC_ALREADY_EXISTS:
                    log.warning("CreateTopics %s rejected: %s", t.name, e)
            results.append({"name": t.name, "error_code": error, "error_message": message})
        return {"throttle_time_ms": 0, "topics": results}

    def delete_topics(self, req: Any, v: int) -> dict[str, Any]:
        out = []
        for name in req.topic_names or []:
            error = 0
            try:
                self.topics.delete(name)
                self.offsets.delete_topic(name)
            except BrokerError as e:
                error = e.code
            out.append({"name": name, "error_code": error})
        return {"throttle_time_ms": 0, "responses": out}

    def delete_records(self, req: Any, v: int) -> dict[str, Any]:
        """Move log starts forward (consumed repartition records): every segment that ends
        at or below the requested offset goes; the low watermark answered is the new log
        start, which may stay below the offset (whole segments only, as retention does)."""
        topics = []
        for t in req.topics:
            answers = []
            for p in t.partitions:
                part = self.topics.get_partition(t.name, p.partition_index)
                error, low = 0, -1
                if part is None:
                    error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    before = part.high_watermark if p.offset == -1 else p.offset
                    if not part.log_start_offset <= before <= part.high_watermark:
                        error = ErrorCode.OFFSET_OUT_OF_RANGE
                    else:
                        self.broker.cleaner.delete_segments_below(part, before)
                    low = part.log_start_offset
                answers.append(
                    {
                        "partition_index": p.partition_index,
                        "low_watermark": low,
                        "error_code": error,
                    }
                )
            topics.append({"name": t.name, "partitions": answers})
        return {"throttle_time_ms": 0, "topics": topics}

    def describe_configs(self, req: Any, v: int) -> dict[str, Any]:
        results = []
        for res in req.resources:
            keys = res.configuration_keys
            configs: list[dict[str, Any]] = []
            error, message = 0, None
            if res.resource_type == 2:  # topic
                topic = self.topics.get(res.resource_name)
                if topic is None:
                    error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    message = "unknown topic"
                else:
                    for name, value in sorted(topic.all_configs().items()):
                        if keys is not None and name not in keys:
                            continue
                        source = 1 if name in topic.overrides else 5
                        configs.append(self._config_entry(name, value, source))
            elif res.resource_type == 4:  # broker
                for name, value in sorted(self._broker_configs().items()):
                    if keys is None or name in keys:
                        configs.append(self._config_entry(name, value, 4))
            else:
                error, message = ErrorCode.INVALID_REQUEST, "unsupported resource type"
            results.append(
                {
                    "error_code": error,
                    "error_message": message,
                    "resource_type": res.resource_type,
                    "resource_name": res.resource_name,
                    "configs": configs,
                }
            )
        return {"throttle_time_ms": 0, "results": results}

    @staticmethod
    def _config_entry(name: str, value: str, source: int) -> dict[str, Any]:
        return {
            "name": name,
            "value": value,
            "read_only": False,
            "config_source": source,
            "is_sensitive": False,
            "synonyms": [],
        }

    def _broker_configs(self) -> dict[str, str]:
        c = self.config
        return {
            "broker.id": str(c.node_id),
            "num.partitions": str(c.num_partitions),
            "auto.create.topics.enable": str(c.auto_create_topics).lower(),
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "min.insync.replicas": "1",
            "log.segment.bytes": str(c.segment_bytes),
            "log.retention.ms": str(c.retention_ms),
            "message.max.bytes": str(c.max_message_bytes),
            "transaction.max.timeout.ms": str(c.transaction_max_timeout_ms),
            "group.initial.rebalance.delay.ms": str(c.group_initial_rebalance_delay_ms),
        }

    # -- produce ----------------------------------------------------------------------------
    def produce(self, req: Any, v: int) -> Deferred | None:
        acks = req.acks
        wrote = False
        responses = []
        for td in req.topic_data:
            topic = self.topics.get_or_create(td.name)
            parts = []
            for pd in td.partition_data:
                if acks not in (0, 1, -1):
                    err, base = ErrorCode.INVALID_REQUIRED_ACKS, -1
                else:
                    err, base = self._produce_partition(topic, td.name, pd.index, pd.records)
                    wrote = wrote or (err == 0)
                part = self.topics.get_partition(td.name, pd.index)
                parts.append(
                    {
                        "index": pd.index,
                        "error_code": err,
                        "base_offset": base,
                        "log_append_time_ms": -1,
                        "log_start_offset": part.log_start_offset if part else -1,
                    }
                )
            responses.append({"name": td.name, "partition_responses": parts})
        if acks == 0:
            return None
        resp = {"responses": responses, "throttle_time_ms": 0}
        waiter = self.flusher.durable() if (acks == -1 and wrote) else None
        return Deferred(resp, waiter)

    def _produce_partition(
        self, topic: Any, name: str, index: int, records: bytes | None
    ) -> tuple[int, int]:
        if topic is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1
        part = self.topics.get_partition(name, index)
        if part is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1
        if not records:
            return ErrorCode.CORRUPT_MESSAGE, -1
        try:
            batches = validate_produce_records(records, part.max_message_bytes)
        except BrokerError as e:
            log.warning("produce to %s-%d rejected: %s", name, index, e)
            return e.code, -1
        first = batches[0]
        if first.is_transactional:
            err = self.txns.check_produce(first.producer_id, first.producer_epoch, name, index)
            if err:
                log.warning(
                    "transactional produce to %s-%d by pid %d epoch %d rejected: %s",
                    name,
                    index,
                    first.producer_id,
                    first.producer_epoch,
                    ErrorCode(err).name,
                )
                return err, -1
        err, base = part.append(records, batches)
        if err:
            log.warning("produce to %s-%d rejected: %s", name, index, ErrorCode(err).name)
            return err, -1
        self.flusher.mark_dirty(part)
        return 0, base

    # -- fetch & offsets --------------------------------------------------------------------
    async def fetch(self, req: Any, v: int) -> dict[str, Any]:
        read_committed = req.isolation_level == READ_COMMITTED
        deadline = time.monotonic() + max(req.max_wait_ms, 0) / 1000.0
        min_bytes = max(req.min_bytes, 0)
        while True:
            topics, total, must_answer, parts = self._fetch_once(req, read_committed)
            remaining = deadline - time.monotonic()
            if total >= min_bytes or must_answer or remaining <= 0 or self.broker.stopping:
                return {
                    "throttle_time_ms": 0,
                    "error_code": 0,
                    "session_id": 0,
                    "responses": topics,
                }
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for p in parts:
                p.waiters.add(fut)
            self.broker.fetch_waiters.add(fut)
            try:
                await asyncio.wait([fut], timeout=remaining)
            finally:
                for p in parts:
                    p.waiters.discard(fut)
                self.broker.fetch_waiters.discard(fut)

    def _fetch_once(self, req: Any, read_committed: bool) -> tuple[list[Any], int, bool, list[Any]]:
        budget = req.max_bytes if req.max_bytes > 0 else 50 * 1024 * 1024
        total = 0
        must_answer = False
        parts = []
        topics = []
        for ft in req.topics:
            presp = []
            for fp in ft.partitions:
                part = self.topics.get_partition(ft.topic, fp.partition)
                if part is None:
                    must_answer = True
                    presp.append(
                        {
                            "partition_index": fp.partition,
                            "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                            "high_watermark": -1,
                            "last_stable_offset": -1,
                            "log_start_offset": -1,
                            "aborted_transactions": None,
                            "preferred_read_replica": -1,
                            "records": b"",
                        }
                    )
                    continue
                parts.append(part)
                limit = min(fp.partition_max_bytes, budget - total)
                if limit <= 0 and total > 0:
                    res = part.fetch(fp.fetch_offset, 0, read_committed)
                    res.records, res.aborted = b"", None
                else:
                    res = part.fetch(fp.fetch_offset, max(limit, 1), read_committed)
                if res.error:
                    must_answer = True
                total += len(res.records)
                presp.append(
                    {
                        "partition_index": fp.partition,
                        "error_code": res.error,
                        "high_watermark": res.high_watermark,
                        "last_stable_offset": res.last_stable_offset,
                        "log_start_offset": res.log_start_offset,
                        "aborted_transactions": [
                            {"producer_id": p, "first_offset": f} for p, f in res.aborted
                        ]
                        if res.aborted
                        else None,
                        "preferred_read_replica": -1,
                        "records": res.records,
                    }
                )
            topics.append({"topic": ft.topic, "partitions": presp})
        return topics, total, must_answer, parts

    def list_offsets(self, req: Any, v: int) -> dict[str, Any]:
        read_committed = v >= 2 and req.isolation_level == READ_COMMITTED
        topics = []
        for t in req.topics:
            presp = []
            for p in t.partitions:
                part = self.topics.get_partition(t.name, p.partition_index)
                err, ts, off = 0, -1, -1
                if part is None:
                    err = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif p.timestamp == -1:
                    off = part.last_stable_offset if read_committed else part.high_watermark
                elif p.timestamp == -2:
                    off = part.log_start_offset
                else:
                    found = part.offset_for_timestamp(p.timestamp)
                    if found is not None:
                        off, ts = found
                presp.append(
                    {
                        "partition_index": p.partition_index,
                        "error_code": err,
                        "timestamp": ts,
                        "offset": off,
                    }
                )
            topics.append({"name": t.name, "partitions": presp})
        return {"throttle_time_ms": 0, "topics": topics}

    async def offset_commit(self, req: Any, v: int) -> dict[str, Any]:
        err = self.groups.check_commit(
            req.group_id, req.generation_id_or_member_epoch, req.member_id
        )
        entries = []
        topics = []
        for t in req.topics:
            presp = []
            for p in t.partitions:
                perr = err
                if not perr and self.topics.get_partition(t.name, p.partition_index) is None:
                    perr = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                meta = p.committed_metadata or ""
                if not perr and len(meta) > MAX_METADATA_LEN:
                    perr = ErrorCode.OFFSET_METADATA_TOO_LARGE
                if not perr:
                    entries.append((t.name, p.partition_index, p.committed_offset, meta))
                presp.append({"partition_index": p.partition_index, "error_code": perr})
            topics.append({"name": t.name, "partitions": presp})
        if entries:
            self.offsets.commit(req.group_id, entries)
            self.flusher.mark_dirty(self.offsets)
            await self.flusher.durable()
        return {"throttle_time_ms": 0, "topics": topics}

    def offset_fetch(self, req: Any, v: int) -> dict[str, Any]:
        group = req.group_id
        if req.topics is None:
            by_topic: dict[str, list[int]] = {}
            for t, p in sorted(self.offsets.group_offsets(group)):
                by_topic.setdefault(t, []).append(p)
            wanted = list(by_topic.items())
        else:
            wanted = [(t.name, list(t.partition_indexes)) for t in req.topics]
        topics = []
        for name, parts in wanted:
            presp = []
            for p in parts:
                got = self.offsets.get(group, name, p)
                off, meta = got if got is not None else (-1, "")
                presp.append(
                    {
                        "partition_index": p,
                        "committed_offset": off,
                        "metadata": meta,
                        "error_code": 0,
                    }
                )
            topics.append({"name": name, "partitions": presp})
        return {"throttle_time_ms": 0, "topics": topics, "error_code": 0}

    # -- groups -----------------------------------------------------------------------------
    async def join_group(self, req: Any, v: int) -> dict[str, Any]:
        rebalance = req.rebalance_timeout_ms if v >= 1 else req.session_timeout_ms
        r = await self.groups.join(
            req.group_id,
            req.member_id or "",
            self.broker.current_client_id(),
            req.session_timeout_ms,
            rebalance,
            req.protocol_type,
            [(p.name, p.metadata) for p in req.protocols],
            req.group_instance_id if v >= 5 else None,
            require_known_member_id=v >= 4,
        )
        return {
            "throttle_time_ms": 0,
            "error_code": r.error,
            "generation_id": r.generation,
            "protocol_name": r.protocol or "",
            "leader": r.leader,
            "member_id": r.member_id,
            "members": [
                {"member_id": m, "group_instance_id": i, "metadata": meta}
                for m, i, meta in r.members
            ],
        }

    async def sync_group(self, req: Any, v: int) -> dict[str, Any]:
        assignments = {a.member_id: a.assignment for a in (req.assignments or [])}
        err, assignment = await self.groups.sync(
            req.group_id, req.generation_id, req.member_id, assignments
        )
        return {"throttle_time_ms": 0, "error_code": err, "assignment": assignment}

    def heartbeat(self, req: Any, v: int) -> dict[str, Any]:
        err = self.groups.heartbeat(req.group_id, req.generation_id, req.member_id)
        return {"throttle_time_ms": 0, "error_code": err}

    def leave_group(self, req: Any, v: int) -> dict[str, Any]:
        if v < 3:
            err = self.groups.leave(req.group_id, req.member_id)
            return {"throttle_time_ms": 0, "error_code": err}
        # v3+ (KIP-345) leaves a batch of members, each with its own error
        members = [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "error_code": self.groups.leave(req.group_id, m.member_id, m.group_instance_id),
            }
            for m in req.members or []
        ]
        return {"throttle_time_ms": 0, "error_code": 0, "members": members}

    # -- transactions ---------------------------------------------------------------------
    async def init_producer_id(self, req: Any, v: int) -> dict[str, Any]:
        err, pid, epoch = await self.txns.init_producer_id(
            req.transactional_id, req.transaction_timeout_ms
        )
        return {
            "throttle_time_ms": 0,
            "error_code": err,
            "producer_id": pid,
            "producer_epoch": epoch,
        }

    async def add_partitions_to_txn(self, req: Any, v: int) -> dict[str, Any]:
        wanted = [(t.name, p) for t in req.v3_and_below_topics for p in t.partitions]
        errors = await self.txns.add_partitions(
            req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            wanted,
            v,
        )
        by_topic: dict[str, list[dict[str, int]]] = {}
        for (t, p), err in errors.items():
            by_topic.setdefault(t, []).append({"partition_index": p, "partition_error_code": err})
        return {
            "throttle_time_ms": 0,
            "results_by_topic_v3_and_below": [
                {"name": t, "results_by_partition": rs} for t, rs in by_topic.items()
            ],
        }

    async def add_offsets_to_txn(self, req: Any, v: int) -> dict[str, Any]:
        err = await self.txns.add_offsets(
            req.transactional_id, req.producer_id, req.producer_epoch, req.group_id, v
        )
        return {"throttle_time_ms": 0, "error_code": err}

    async def txn_offset_commit(self, req: Any, v: int) -> dict[str, Any]:
        entries = [
            (t.name, p.partition_index, p.committed_offset, p.committed_metadata or "")
            for t in req.topics
            for p in t.partitions
        ]
        err = await self.txns.txn_offset_commit(
            req.transactional_id, req.group_id, req.producer_id, req.producer_epoch, entries, v
        )
        return {
            "throttle_time_ms": 0,
            "topics": [
                {
                    "name": t.name,
                    "partitions": [
                        {"partition_index": p.partition_index, "error_code": err}
                        for p in t.partitions
                    ],
                }
                for t in req.topics
            ],
        }

    async def end_txn(self, req: Any, v: int) -> dict[str, Any]:
        err = await self.txns.end_txn(
            req.transactional_id, req.producer_id, req.producer_epoch, req.committed, v
        )
        return {"throttle_time_ms": 0, "error_code": err}
