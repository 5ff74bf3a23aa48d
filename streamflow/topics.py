"""Topic declarations: a name plus the codecs of its keys and values.

A :class:`Topic` says nothing about a broker; the runtime creates it when a worker starts.

Example:
    >>> from streamflow.topics import Topic
    >>> t = Topic("user_spending_summary", key="str", value="str")
    >>> t.value_codec.decode(t.value_codec.encode("12.50"))
    '12.50'
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamflow.codecs import Codec, resolve_codec

__all__ = ["PURGED_TOPIC_CONFIG", "Topic", "topic_name_override"]

_ENV_SAFE = re.compile(r"[^A-Z0-9]+")


def topic_name_override(name: str) -> str:
    """The topic name after the ``STREAMFLOW_TOPIC_<NAME>`` environment override.

    Lets one app module run against differently named topics (tests, benchmarks, staging).

    >>> import os
    >>> os.environ["STREAMFLOW_TOPIC_ORDER_EVENTS"] = "orders-test"
    >>> topic_name_override("order_events")
    'orders-test'
    >>> del os.environ["STREAMFLOW_TOPIC_ORDER_EVENTS"]
    """
    variable = "STREAMFLOW_TOPIC_" + _ENV_SAFE.sub("_", name.upper()).strip("_")
    return os.environ.get(variable, name)


#: The configuration of the internal topics the app reads back (repartition, foreign-key
#: subscription and retry topics), as Kafka Streams configures its repartition topics:
#: no time limit, since records keep their (event) timestamps, which may be long past,
#: and Kafka's time retention would delete them unread. The worker deletes what its
#: group has committed past instead (``streamflow.runtime.purge``).
PURGED_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "segment.ms": "600000"}


@dataclass(eq=False)
class Topic:
    """A topic with its key and value codecs.

    ``key`` and ``value`` take a :class:`~streamflow.codecs.Codec` or a shorthand such as
    ``"str"``, ``"json"``, ``"decimal"`` or ``"avro:order_event"``. ``partitions`` is used
    when the runtime has to create the topic (the app's default otherwise).
    ``dead_letter_topic`` receives the records of this topic that fail (default: the
    app's, ``<app-id>-dlq``).

    >>> Topic("order_events", key="str", value="json").value_codec.name
    'json'
    """

    name: str
    key: Codec | str = "str"
    value: Codec | str = "json"
    partitions: int | None = None
    config: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    dead_letter_topic: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a topic needs a non-empty name")
        self.key_codec: Codec = resolve_codec(self.key).for_topic(self.name, is_key=True)
        self.value_codec: Codec = resolve_codec(self.value).for_topic(self.name, is_key=False)

    @classmethod
    def internal_read_back(cls, name: str, **kwargs: Any) -> Topic:
        """An internal topic the app writes and reads back, purged once consumed (see
        :data:`PURGED_TOPIC_CONFIG`).

        >>> Topic.internal_read_back("shop-by-user-repartition").purged
        True
        """
        return cls(name, config=dict(PURGED_TOPIC_CONFIG), internal=True, **kwargs)

    @property
    def purged(self) -> bool:
        """Whether the worker deletes this topic's records once its group committed them."""
        return self.internal and self.config.get("retention.ms") == "-1"

    def decode_key(self, data: bytes | None) -> Any:
        """Decode a record key (``None`` stays ``None``)."""
        return None if data is None else self.key_codec.decode(data)

    def decode_value(self, data: bytes | None) -> Any:
        """Decode a record value (``None``, a tombstone, stays ``None``)."""
        return None if data is None else self.value_codec.decode(data)

    async def send(
        self,
        key: Any,
        value: Any,
        *,
        timestamp: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        """Send ``(key, value)`` to this topic from an agent, a timer or a crontab.

        In an agent the record belongs to the record the agent holds: under exactly-once
        it is written in the transaction that commits that record's offset (to whichever
        partition ``key`` picks), under at-least-once it is acknowledged before the offset
        is committed, and it is dropped if the agent fails on the record. ``timestamp``
        (ms) defaults to the consumed record's; ``partition`` overrides the key's.

        >>> # async for order_id, order in stream.items():
        >>> #     await paid.send(order_id, order)
        """
        from streamflow.runtime.agents import current_emitter

        emitter = current_emitter(f"{self.name}.send()")
        await emitter.send(
            self, key, value, timestamp=timestamp, headers=headers, partition=partition
        )

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, key={self.key_codec.name}, value={self.value_codec.name})"
