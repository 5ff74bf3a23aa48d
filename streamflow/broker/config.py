"""Broker and topic configuration.

Durability (``fsync_policy``):

* ``"ack"`` (default): group commit. A produce request with ``acks=all`` (and every
  transaction marker, offset commit and coordinator state change) is answered only after the
  touched files were fsynced. Concurrent requests share one fsync, so the cost is one
  ``fdatasync`` per burst of requests rather than per record. ``acks=1`` is answered after the
  write reached the OS page cache (safe against a crash of the broker process, not of the
  machine); a background flusher fsyncs it within ``flush_interval_ms``.
* ``"interval"``: nothing waits for fsync; the background flusher syncs every
  ``flush_interval_ms``. Survives ``kill -9`` of the broker, may lose the last interval on
  power loss.
* ``"never"``: leave it to the OS (like Apache Kafka's default, which relies on replication).

Example:
    >>> from pathlib import Path
    >>> cfg = BrokerConfig(data_dir=Path("/tmp/sf"), num_partitions=3)
    >>> cfg.port
    9192
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PORT = 9192
"""Default listen port; chosen so it does not collide with Kafka's 9092."""

FSYNC_POLICIES = ("ack", "interval", "never")


@dataclass
class BrokerConfig:
    """All broker options; every field can be passed as a keyword to ``Broker``.

    Example:
        >>> BrokerConfig(data_dir=Path("/tmp/x"), auto_create_topics=False).auto_create_topics
        False
    """

    data_dir: Path = Path("./state/broker")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    advertised_host: str | None = None
    node_id: int = 0
    cluster_id: str = "streamflow-local"
    num_partitions: int = 1
    auto_create_topics: bool = True
    fsync_policy: str = "ack"
    flush_interval_ms: int = 1000
    segment_bytes: int = 64 * 1024 * 1024
    segment_ms: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    retention_check_interval_ms: int = 60_000
    compaction_interval_ms: int = 30_000
    delete_retention_ms: int = 24 * 3600 * 1000
    max_message_bytes: int = 1024 * 1024 + 12
    max_request_bytes: int = 100 * 1024 * 1024
    transaction_max_timeout_ms: int = 900_000
    transaction_check_interval_ms: int = 1000
    group_initial_rebalance_delay_ms: int = 0
    group_min_session_timeout_ms: int = 1000
    group_max_session_timeout_ms: int = 1_800_000
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.fsync_policy not in FSYNC_POLICIES:
            raise ValueError(f"fsync_policy must be one of {FSYNC_POLICIES}")
        if self.num_partitions < 1:
            raise ValueError("num_partitions must be >= 1")

    @classmethod
    def from_options(cls, **options: Any) -> BrokerConfig:
        """Build a config from keyword options, rejecting unknown names.

        Example:
            >>> BrokerConfig.from_options(data_dir="/tmp/x", port=0).port
            0
        """
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown broker option(s): {', '.join(sorted(unknown))}")
        return cls(**options)

    @property
    def advertised(self) -> str:
        """Host name put in metadata responses.

        Example:
            >>> BrokerConfig(host="0.0.0.0").advertised
            '127.0.0.1'
        """
        if self.advertised_host:
            return self.advertised_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host

    def topic_defaults(self) -> dict[str, str]:
        """Default topic-level configs (Kafka names) derived from the broker options.

        Example:
            >>> BrokerConfig().topic_defaults()["cleanup.policy"]
            'delete'
        """
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_ms),
            "retention.bytes": str(self.retention_bytes),
            "segment.bytes": str(self.segment_bytes),
            "segment.ms": str(self.segment_ms),
            "delete.retention.ms": str(self.delete_retention_ms),
            "max.message.bytes": str(self.max_message_bytes),
            "message.timestamp.type": "CreateTime",
            "min.insync.replicas": "1",
            "compression.type": "producer",
        }


TOPIC_CONFIG_NAMES = frozenset(
    BrokerConfig().topic_defaults().keys()
    | {
        "min.compaction.lag.ms",
        "min.cleanable.dirty.ratio",
        "unclean.leader.election.enable",
        "flush.messages",
        "flush.ms",
        "index.interval.bytes",
        "segment.index.bytes",
        "file.delete.delay.ms",
        "max.compaction.lag.ms",
        "message.downconversion.enable",
        "preallocate",
        "segment.jitter.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms",
        "follower.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        "local.retention.ms",
        "local.retention.bytes",
        "remote.storage.enable",
    }
)
"""Topic config names accepted by CreateTopics (unknown names get INVALID_CONFIG)."""
