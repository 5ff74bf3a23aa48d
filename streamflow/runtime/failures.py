"""Failed records, routed by the sub-topology's error policy: dead letters, retries, stop.

For each record of a batch that failed (first failure wins):

* a :class:`~streamflow.dsl.policies.Stop` policy raises :class:`ProcessingStopped`
  before anything of the batch is sent, so nothing past the record is committed;
* a :class:`~streamflow.dsl.policies.Retry` policy sends the record, original bytes
  untouched, to the retry topic of the next attempt with the headers
  ``streamflow.retry.attempt`` and ``streamflow.retry.due`` (epoch ms), and the error
  headers of the dead-letter format naming the *original* source; the retry
  sub-topology processes it once due. Undecodable records, errors the policy does not
  retry, and records out of attempts are dead-lettered;
* otherwise the record is dead-lettered (see :mod:`streamflow.runtime.dead_letters`).

A record late for every window of a ``late="dead-letter"`` aggregation is dead-lettered
whatever the policy: retried it would only be later, and it is no reason to stop.

Everything is sent through the batch's producer, so under exactly-once it commits with
the consumed offsets: a failed record is neither lost nor handled twice.

Example:
    >>> from streamflow.runtime.failures import retry_due_ms
    >>> retry_due_ms([("streamflow.retry.due", b"1700000000000")])
    1700000000000
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from streamflow.dsl.policies import Retry, Stop
from streamflow.dsl.topology import Subtopology, retry_topic_name
from streamflow.runtime.batch import Failure
from streamflow.runtime.dead_letters import error_headers, read_error_headers
from streamflow.runtime.metrics import WorkerMetrics
from streamflow.runtime.sender import RecordSender, Sent
from streamflow.runtime.windowing import LateRecord

if TYPE_CHECKING:
    from streamflow.runtime.tasks import ConsumedRecord

__all__ = ["RETRY_ATTEMPT", "RETRY_DUE", "FailureRouter", "ProcessingStopped", "retry_due_ms"]

log = logging.getLogger(__name__)

RETRY_ATTEMPT = "streamflow.retry.attempt"
RETRY_DUE = "streamflow.retry.due"
_RETRY_HEADERS = frozenset({RETRY_ATTEMPT, RETRY_DUE})

Headers = list[tuple[str, bytes]]


class ProcessingStopped(Exception):
    """A record failed under the ``Stop`` policy: the worker must stop."""


def retry_due_ms(headers: Iterable[tuple[str, bytes]]) -> int:
    """When a retried record is due (epoch ms; 0 if it has no due time)."""
    for name, value in headers:
        if name == RETRY_DUE:
            return int(value)
    return 0


class FailureRouter:
    """Sends the failed records of a sub-topology's batches where its policy says.

    >>> # router = FailureRouter("shop", subtopology, "shop-dlq", WorkerMetrics("shop"))
    >>> # sent = await router.route(sender, partition, records, ctx.failures)
    """

    def __init__(
        self,
        app_id: str,
        subtopology: Subtopology,
        dead_letter_topic: str,
        metrics: WorkerMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` gives the current time in seconds (retry due times are set from it)."""
        self.app_id = app_id
        self.clock = clock
        self.metrics = metrics
        self.subtopology = subtopology
        self.source = subtopology.source.topic.name
        self.policy = subtopology.on_error
        self.attempt = subtopology.source.retry_attempt
        self.dead_letter_topic = subtopology.dead_letter_topic or dead_letter_topic
        self.retry_topic = self._next_retry_topic()

    def _next_retry_topic(self) -> str | None:
        if not isinstance(self.policy, Retry) or self.attempt >= self.policy.attempts:
            return None
        source = self.subtopology.source
        return retry_topic_name(self.app_id, source.retry_of or source.topic.name, self.attempt + 1)

    def check_stop(self, partition: int, records: Sequence[ConsumedRecord], failures) -> None:
        """Raise :class:`ProcessingStopped` if the policy is ``Stop`` and a record failed."""
        failures = [f for f in failures if not isinstance(f.error, LateRecord)]
        if not failures or not isinstance(self.policy, Stop):
            return
        failure = failures[0]
        record = records[failure.source_index]
        kind = type(failure.error).__name__
        raise ProcessingStopped(
            f"record {record.topic or self.source}[{partition}]@{record.offset} failed in step "
            f"{failure.step!r}: {kind}: {failure.error}. The error policy is Stop, so the "
            "worker stops without committing it; fix the code or the data, then start the "
            "worker again to process it (or use on_error=DeadLetter() to skip such records)."
        )

    async def route(
        self,
        sender: RecordSender,
        partition: int,
        records: Sequence[ConsumedRecord],
        failures: Sequence[Failure],
    ) -> list[Sent]:
        """Dead-letter or retry each failed record once; return what was sent."""
        seen: set[int] = set()
        letters: tuple[list, list[Headers]] = ([], [])
        retries: tuple[list, list[Headers]] = ([], [])
        now_ms = int(self.clock() * 1000)
        for failure in failures:
            if failure.source_index in seen:
                continue
            seen.add(failure.source_index)
            record = records[failure.source_index]
            source = record.topic or self.source
            headers = self._failure_headers(partition, record, failure)
            out = (record.key, record.value, record.timestamp_ms)
            if self._retries(failure):
                assert isinstance(self.policy, Retry)
                due = now_ms + int(self.policy.delay(self.attempt + 1) * 1000)
                retries[0].append(out)
                retries[1].append(
                    [
                        *headers,
                        (RETRY_ATTEMPT, str(self.attempt + 1).encode()),
                        (RETRY_DUE, str(due).encode()),
                    ]
                )
                action = f"retrying (attempt {self.attempt + 1})"
                self.metrics.record_retried(source, self.attempt + 1)
            else:
                if self.attempt:  # how many retries it had
                    headers.append((RETRY_ATTEMPT, str(self.attempt).encode()))
                letters[0].append(out)
                letters[1].append(headers)
                action = "dead-lettering"
                self.metrics.records_failed(source, failure.step, 1)
                if isinstance(failure.error, LateRecord):
                    self.metrics.records_late(source, failure.step, 1)
            log.warning(
                "Record %s[%d]@%d failed in step %s, %s: %s: %s",
                source,
                partition,
                record.offset,
                failure.step,
                action,
                type(failure.error).__name__,
                failure.error,
            )
        sent: list[Sent] = []
        if letters[0]:
            done = await sender.send(self.dead_letter_topic, letters[0], headers=letters[1])
            sent.extend(done.values())
        if retries[0] and self.retry_topic is not None:
            # Stateful sub-topologies keep the partition: the retry runs where the table is.
            keep = partition if self.subtopology.stores else None
            done = await sender.send(
                self.retry_topic, retries[0], headers=retries[1], partition=keep
            )
            sent.extend(done.values())
        return sent

    def _retries(self, failure: Failure) -> bool:
        return (
            self.retry_topic is not None
            and failure.step != "decode"
            and not isinstance(failure.error, LateRecord)  # it would only be later
            and isinstance(self.policy, Retry)
            and self.policy.retries(failure.error)
        )

    def _failure_headers(self, partition: int, record: ConsumedRecord, failure: Failure) -> Headers:
        """The record's own headers plus error headers naming where it first came from."""
        if self.attempt:
            info = read_error_headers(record.headers)
            own = [(k, v) for k, v in info.headers if k not in _RETRY_HEADERS]
            origin = (info.source_topic, info.source_partition, info.source_offset)
        else:
            own = list(record.headers)
            origin = (record.topic or self.source, partition, record.offset)
        topic, source_partition, offset = origin
        return [
            *own,
            *error_headers(
                self.app_id,
                topic or self.source,
                partition if source_partition is None else source_partition,
                record.offset if offset is None else offset,
                failure.error,
                failure.step,
            ),
        ]
