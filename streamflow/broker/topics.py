"""Topic registry: creation (explicit or automatic), deletion, configs, partition lookup.

Each topic lives in ``<data_dir>/topics/<name>/`` with ``topic.json`` (partition count and
config overrides) and one sub-directory per partition.

Example:
    >>> import tempfile
    >>> from streamflow.broker.config import BrokerConfig
    >>> tm = TopicManager(BrokerConfig(data_dir=Path(tempfile.mkdtemp())))
    >>> tm.create("orders", 2, {}).name
    'orders'
    >>> tm.get_partition("orders", 1).index
    1
    >>> tm.close()
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path

from .config import TOPIC_CONFIG_NAMES, BrokerConfig
from .errors import BrokerError, ErrorCode
from .log import LogConfig, fsync_dir
from .partition import Partition

log = logging.getLogger(__name__)

_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249


def validate_topic_name(name: str) -> None:
    """Raise INVALID_TOPIC_EXCEPTION for names Kafka would reject.

    Example:
        >>> validate_topic_name("ok.topic-1")
        >>> validate_topic_name("..")
        Traceback (most recent call last):
        ...
        streamflow.broker.errors.BrokerError: INVALID_TOPIC_EXCEPTION: illegal topic name '..'
    """
    if not name or name in (".", "..") or len(name) > MAX_TOPIC_NAME or not _LEGAL.match(name):
        raise BrokerError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"illegal topic name {name!r}")


class Topic:
    """A topic: its partitions and config overrides.

    Example:
        >>> import tempfile
        >>> from streamflow.broker.config import BrokerConfig
        >>> cfg = BrokerConfig(data_dir=Path(tempfile.mkdtemp()))
        >>> t = TopicManager(cfg).create("t", 1, {"cleanup.policy": "compact"})
        >>> t.config("cleanup.policy"), t.compacted
        ('compact', True)
    """

    def __init__(
        self, name: str, directory: Path, configs: dict[str, str], broker: BrokerConfig
    ) -> None:
        self.name = name
        self.directory = directory
        self.overrides = dict(configs)
        self.defaults = broker.topic_defaults()
        self.partitions: list[Partition] = []
        self.is_internal = False

    def config(self, key: str) -> str:
        return self.overrides.get(key, self.defaults.get(key, ""))

    def int_config(self, key: str) -> int:
        return int(self.config(key))

    def all_configs(self) -> dict[str, str]:
        return {**self.defaults, **self.overrides}

    @property
    def compacted(self) -> bool:
        return "compact" in self.config("cleanup.policy").split(",")

    @property
    def deletes(self) -> bool:
        return "delete" in self.config("cleanup.policy").split(",")

    def log_config(self, broker: BrokerConfig) -> LogConfig:
        return LogConfig(
            segment_bytes=self.int_config("segment.bytes"),
            segment_ms=self.int_config("segment.ms"),
            index_interval_bytes=broker.index_interval_bytes,
        )


class TopicManager:
    """Owns all topics of the broker.

    Example:
        >>> import tempfile
        >>> from streamflow.broker.config import BrokerConfig
        >>> tm = TopicManager(BrokerConfig(data_dir=Path(tempfile.mkdtemp())))
        >>> sorted(tm.topics)
        []
    """

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.root = config.data_dir / "topics"
        self.root.mkdir(parents=True, exist_ok=True)
        self.topics: dict[str, Topic] = {}
        self._trash = config.data_dir / "deleted"
        self._load()

    def _load(self) -> None:
        for d in sorted(self.root.iterdir()):
            meta_path = d / "topic.json"
            if not meta_path.exists():
                continue
            try:
                meta = json.loads(meta_path.read_text())
                self._open(d.name, int(meta["partitions"]), meta.get("configs", {}))
            except Exception:
                log.exception("could not load topic %s; skipping it", d.name)
        if self._trash.exists():
            threading.Thread(target=shutil.rmtree, args=(self._trash, True), daemon=True).start()

    def _open(self, name: str, num_partitions: int, configs: dict[str, str]) -> Topic:
        directory = self.root / name
        topic = Topic(name, directory, configs, self.config)
        lc = topic.log_config(self.config)
        mmb = topic.int_config("max.message.bytes")
        for i in range(num_partitions):
            topic.partitions.append(Partition(name, i, directory / str(i), lc, mmb))
        self.topics[name] = topic
        return topic

    def create(self, name: str, num_partitions: int, configs: dict[str, str]) -> Topic:
        """Create a topic (raises BrokerError with Kafka's codes on bad input)."""
        validate_topic_name(name)
        if name in self.topics:
            raise BrokerError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        if num_partitions == -1:
            num_partitions = self.config.num_partitions
        if num_partitions < 1 or num_partitions > 10000:
            raise BrokerError(ErrorCode.INVALID_PARTITIONS, "partitions must be in 1..10000")
        for k in configs:
            if k not in TOPIC_CONFIG_NAMES:
                raise BrokerError(ErrorCode.INVALID_CONFIG, f"unknown topic config {k!r}")
        for k in ("segment.bytes", "segment.ms", "retention.ms", "retention.bytes"):
            if k in configs:
                try:
                    int(configs[k])
                except ValueError:
                    raise BrokerError(ErrorCode.INVALID_CONFIG, f"{k} must be an integer") from None
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"partitions": num_partitions, "configs": configs}
        tmp = directory / "topic.json.tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / "topic.json")
        fsync_dir(directory)
        fsync_dir(self.root)
        topic = self._open(name, num_partitions, configs)
        log.info("created topic %s with %d partition(s)", name, num_partitions)
        return topic

    def get(self, name: str) -> Topic | None:
        return self.topics.get(name)

    def get_or_create(self, name: str) -> Topic | None:
        """Return the topic, auto-creating it when allowed; None if it does not exist."""
        topic = self.topics.get(name)
        if topic is None and self.config.auto_create_topics:
            try:
                topic = self.create(name, self.config.num_partitions, {})
            except BrokerError:
                return None
        return topic

    def get_partition(self, name: str, index: int) -> Partition | None:
        topic = self.topics.get(name)
        if topic is None or not 0 <= index < len(topic.partitions):
            return None
        return topic.partitions[index]

    def delete(self, name: str) -> None:
        """Delete a topic: close its partitions and remove its files in the background."""
        topic = self.topics.pop(name, None)
        if topic is None:
            raise BrokerError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}")
        for p in topic.partitions:
            p.close()
        self._trash.mkdir(parents=True, exist_ok=True)
        dest = self._trash / f"{name}-{uuid.uuid4().hex}"
        os.replace(topic.directory, dest)
        threading.Thread(target=shutil.rmtree, args=(dest, True), daemon=True).start()
        log.info("deleted topic %s", name)

    def all_partitions(self) -> list[Partition]:
        return [p for t in self.topics.values() for p in t.partitions]

    def close(self) -> None:
        for t in self.topics.values():
            for p in t.partitions:
                p.close()
