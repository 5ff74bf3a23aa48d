"""Dead letters: records that could not be processed, kept with their original bytes.

A dead letter is the consumed record's key and value, byte for byte, plus headers that say
what went wrong and where the record came from:

=============================  ==========================================================
``streamflow.error``           the error message
``streamflow.exception``       the exception type (``module.Class``)
``streamflow.step``            the step that failed (``decode``, ``filter-2``, …)
``streamflow.source.topic``    topic the record was consumed from
``streamflow.source.partition``  its partition
``streamflow.source.offset``   its offset
``streamflow.app``             the app id
=============================  ==========================================================

Dead letters are sent through the source partition's producer, so under exactly-once
they commit in the same transaction as the consumed offsets.

Example:
    >>> from streamflow.runtime.dead_letters import error_headers
    >>> dict(error_headers("app", "orders", 3, 42, ValueError("bad amount"), "decode"))[
    ...     "streamflow.exception"]
    b'builtins.ValueError'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from streamflow.runtime.batch import Failure
from streamflow.runtime.sender import BatchSender, Sent

if TYPE_CHECKING:
    from streamflow.runtime.tasks import ConsumedRecord

__all__ = ["DeadLetters", "error_headers"]

log = logging.getLogger(__name__)


def error_headers(
    app_id: str, topic: str, partition: int, offset: int, error: BaseException, step: str
) -> list[tuple[str, bytes]]:
    """The headers describing a dead letter (see the module documentation)."""
    kind = type(error)
    return [
        ("streamflow.error", str(error).encode()[:4096]),
        ("streamflow.exception", f"{kind.__module__}.{kind.__qualname__}".encode()),
        ("streamflow.step", step.encode()),
        ("streamflow.source.topic", topic.encode()),
        ("streamflow.source.partition", str(partition).encode()),
        ("streamflow.source.offset", str(offset).encode()),
        ("streamflow.app", app_id.encode()),
    ]


class DeadLetters:
    """Sends failed records to the app's dead-letter topic.

    >>> letters = DeadLetters("shop", "shop-dlq")
    >>> letters.topic
    'shop-dlq'
    """

    def __init__(self, app_id: str, topic: str) -> None:
        self.app_id = app_id
        self.topic = topic
        self.count = 0

    async def send(
        self,
        sender: BatchSender,
        source_topic: str,
        partition: int,
        records: Sequence[ConsumedRecord],
        failures: Sequence[Failure],
    ) -> dict[int, Sent]:
        """Dead-letter each failed record once (a record failing twice is sent once)."""
        seen: set[int] = set()
        out, headers = [], []
        for failure in failures:
            if failure.source_index in seen:
                continue
            seen.add(failure.source_index)
            record = records[failure.source_index]
            log.warning(
                "Dead-lettering %s[%d]@%d (step %s): %s: %s",
                source_topic,
                partition,
                record.offset,
                failure.step,
                type(failure.error).__name__,
                failure.error,
            )
            out.append((record.key, record.value, record.timestamp_ms))
            headers.append(
                [
                    *record.headers,
                    *error_headers(
                        self.app_id,
                        source_topic,
                        partition,
                        record.offset,
                        failure.error,
                        failure.step,
                    ),
                ]
            )
        self.count += len(out)
        return await sender.send(self.topic, out, headers=headers)
