"""What the test driver hands back: records read from topics, and dead letters.

Example:
    >>> record = TestRecord("u1", "10.50", timestamp=1000, headers=[], partition=3, offset=0)
    >>> record.key, record.value
    ('u1', '10.50')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamflow.runtime.dead_letters import DeadLetterInfo

__all__ = ["DeadLetterRecord", "TestRecord"]


@dataclass(frozen=True)
class TestRecord:
    """A record an app wrote to a topic, decoded with the topic's codecs.

    >>> TestRecord("k", 1, timestamp=5, headers=[("trace", b"t")], partition=0, offset=7).offset
    7
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    key: Any
    value: Any
    timestamp: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int = 0
    offset: int = 0


@dataclass(frozen=True)
class DeadLetterRecord:
    """A record that failed: its original bytes, and what its dead-letter headers say.

    ``topic`` is the dead-letter topic it was written to; ``info`` names the error, the
    step and the record's source topic, partition and offset.

    >>> letter = DeadLetterRecord(b"o1", b"garbage", timestamp=0, topic="shop-dlq",
    ...                           info=DeadLetterInfo(error="bad", step="decode"))
    >>> letter.step, letter.error
    ('decode', 'bad')
    """

    key: bytes | None
    value: bytes | None
    timestamp: int
    topic: str
    info: DeadLetterInfo
    #: Every header as written: the record's own, then the error headers.
    headers: list[tuple[str, bytes]] = field(default_factory=list, repr=False)

    @property
    def error(self) -> str | None:
        """The error message of the failure."""
        return self.info.error

    @property
    def step(self) -> str | None:
        """The step that failed (``decode``, ``filter-2``, a table name …)."""
        return self.info.step

    @property
    def exception(self) -> str | None:
        """The exception type, ``module.Class``."""
        return self.info.exception

    @property
    def source_topic(self) -> str | None:
        """The topic the record was first consumed from."""
        return self.info.source_topic
